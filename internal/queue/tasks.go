package queue

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
)

// Task types: stable strings, never derived from Go type names.
const (
	TypeNotify     = "voice:notify"
	TypeVerify     = "voice:verify"
	TypeClick2Call = "voice:click2call"
)

// TaskType returns the asynq task type of a job kind.
func TaskType(k Kind) string {
	switch k {
	case KindVerify:
		return TypeVerify
	case KindClick2Call:
		return TypeClick2Call
	default:
		return TypeNotify
	}
}

// Queues returns the dial queues and their priorities (for inspection and the queue metrics).
// The worker serves them on two asynq servers, VerifyQueues and CallQueues.
func Queues() map[string]int {
	return map[string]int{QueueVerify: 8, QueueNotify: 2, QueueBulk: 1}
}

// VerifyQueues are the queues of the worker's verify server. Verification calls have workers of
// their own, so a person waiting for a code never waits for a worker that a campaign holds, and
// no dequeue of a campaign call first looks into the (mostly empty) verify queue: one asynq
// dequeue script per task, as for a single queue. At the shared rate cap verify still comes first
// through its high-priority tokens (internal/ratelimit).
func VerifyQueues() map[string]int {
	return map[string]int{QueueVerify: 1}
}

// CallQueues are the queues of the worker's call server, run with StrictPriority: a notify task
// is always taken before a bulk one. Webhook deliveries have a server of their own too
// (QueueWebhooks), so results keep flowing while a backlog drains.
func CallQueues() map[string]int {
	return map[string]int{QueueNotify: 2, QueueBulk: 1}
}

// TaskOptions configures the asynq side of a job task.
type TaskOptions struct {
	// MaxAttempts is how many provider requests a job may make for transient failures (default 5).
	MaxAttempts int
	// Timeout bounds one run of the handler (default 60 s).
	Timeout time.Duration
}

func (o TaskOptions) withDefaults() TaskOptions {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	return o
}

// taskMaxRetry is asynq's retry limit of voice tasks: in effect none (see NewTask).
const taskMaxRetry = 1 << 20

// NewTask builds the asynq task of a job. The task ID is the job ID, so that a job can never be
// enqueued twice, and the task is kept until the job's dispatch deadline at most.
func NewTask(job Job, o TaskOptions) (*asynq.Task, error) {
	o = o.withDefaults()
	payload, err := json.Marshal(job)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", job.ID, err)
	}
	opts := []asynq.Option{
		asynq.TaskID(job.ID),
		asynq.Queue(job.Queue),
		// asynq archives a task once its retry count reaches MaxRetry, whatever the error and
		// before IsFailure is consulted, and it counts a killed worker's redelivery as a retry:
		// a job whose task were archived while its record waits would be lost. So asynq never
		// gives up; the Handler ends the job from the record's own attempt count.
		asynq.MaxRetry(taskMaxRetry),
		asynq.Timeout(o.Timeout),
	}
	if job.ScheduledAt != nil {
		opts = append(opts, asynq.ProcessAt(*job.ScheduledAt))
	}
	return asynq.NewTask(TaskType(job.Kind), payload, opts...), nil
}

// DecodeJob decodes a task payload.
func DecodeJob(payload []byte) (Job, error) {
	var job Job
	if err := json.Unmarshal(payload, &job); err != nil {
		return Job{}, fmt.Errorf("decode job payload: %w", err)
	}
	if job.ID == "" {
		return Job{}, fmt.Errorf("decode job payload: no job id")
	}
	return job, nil
}
