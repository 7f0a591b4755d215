// Command enqueue submits voice-call jobs to voicequeue and looks them up: one job from flags,
// a CSV or JSONL file in batches, a job's status, a cancellation. It talks to the gateway's HTTP
// API (--api, VOICEQUEUE_API) or straight to Redis (--redis).
//
// Run `enqueue --help` for the commands, `enqueue COMMAND --help` for their flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/voicequeue/voicequeue/internal/queue"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once, even while blocked reading stdin
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole CLI: it parses args, runs the command and returns the exit code (0 success,
// 2 bad input, 1 anything else). Tests call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{getenv: os.Getenv, stdin: stdin, stdout: stdout, stderr: stderr, isTerminal: isTerminal}
	return c.run(ctx, args)
}

// cli holds what a command may touch: the environment and the standard streams.
type cli struct {
	getenv     func(string) string
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	isTerminal func(io.Writer) bool
}

// command is one subcommand.
type command struct {
	name  string
	usage string // synopsis after "enqueue NAME"
	about string // what it does, printed by --help
	run   func(c *cli, ctx context.Context, name string, args []string) error
}

var commands = []command{
	{"notify", "--to NUMBER (--template ID [--param VALUE]… | --voice-file F) [--collect-digits N] [--bulk] [flags]",
		"Submit a notification call that plays a template (with its parameters) or a voice file.\n" +
			"Prints the job ID alone on stdout.", (*cli).notify},
	{"verify", "--to NUMBER [--code DIGITS] [flags]",
		"Submit a verification-code call. The code is 2 to 8 digits; without --code the service\n" +
			"generates one. Prints the job ID alone on stdout.", (*cli).verify},
	{"click2call", "--from NUMBER --to NUMBER [--max-duration MINUTES] [--record] [flags]",
		"Submit a click-to-call job: the platform calls --from, then connects it to --to.\n" +
			"Prints the job ID alone on stdout.", (*cli).click2call},
	{"status", "ID [flags]", "Print the job record as indented JSON on stdout.", (*cli).status},
	{"cancel", "ID [flags]", "Cancel a job that has not been dialled yet; prints its record (now canceled) as\n" +
		"indented JSON on stdout. A job already dialled cannot be canceled (exit 1).", (*cli).cancel},
	{"file", "PATH [flags]", fileAbout, (*cli).file},
}

const topUsage = `enqueue submits voice-call jobs to voicequeue and looks them up.

Usage:
  enqueue notify     --to NUMBER --template ID [--param VALUE]… [--voice-file F] [--collect-digits N] [--bulk]
  enqueue verify     --to NUMBER [--code DIGITS]
  enqueue click2call --from NUMBER --to NUMBER [--max-duration MINUTES] [--record]
  enqueue status     ID
  enqueue cancel     ID
  enqueue file       PATH   (CSV or JSONL; "-" reads stdin)

notify, verify and click2call print the job ID alone on stdout; status and cancel print the
job record as JSON; file reports each bad line on stderr as "line N: FIELD: message", shows a
progress bar and ends with "submitted N, rejected M" on stderr (IDs on stdout with --ids).
Flags may follow the arguments (enqueue status ID --api URL).

Flags of every job command:
  --idempotency-key KEY   a second submit with the same key returns the first job (24 h)
  --callback-url URL      where the result is posted, signed, when the job ends
  --at TIME               when to call (RFC 3339 → scheduled_at)
  --ttl DURATION          give up if not dialled within this time (e.g. 10m)
  --timezone ZONE         the callee's IANA time zone for calling windows

Where jobs go (every command):
  --api URL               the gateway (env VOICEQUEUE_API, default http://127.0.0.1:8080)
  --token-file FILE       bearer token for the gateway, from a file (env VOICEQUEUE_API_TOKEN;
                          --token TOKEN also works but shows in ps)
  --redis URL             talk straight to Redis instead (REDIS_URL is never used implicitly);
                          verify jobs then need VOICEQUEUE_CODE_KEY or VOICEQUEUE_PUSH_SECRET
  --region CC             region of numbers written without +country code (env
                          VOICEQUEUE_DEFAULT_REGION, default CN)
  --timeout DURATION      per request (default 30s)

Exit status: 0 success; 2 bad input (a usage error, a field that fails validation — the
message names it, e.g. "enqueue: to: not a valid phone number" —, or a file with rejected
lines); 1 anything else (network, server error, job not found, a batch not submitted).

Run 'enqueue COMMAND --help' for a command's flags.
`

// silentExit ends the process with a code after the command has reported everything itself.
type silentExit struct{ code int }

func (e *silentExit) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func (c *cli) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(c.stderr, topUsage)
		return exitBadInput
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(args) > 1 {
			if cmd := lookup(args[1]); cmd != nil {
				var hr *helpRequest
				if err := cmd.run(c, ctx, cmd.name, []string{"--help"}); errors.As(err, &hr) {
					c.commandHelp(cmd, hr.fs)
					return exitOK
				}
			}
			fmt.Fprintf(c.stderr, "enqueue: unknown command %q\n", args[1])
			return exitBadInput
		}
		fmt.Fprint(c.stdout, topUsage)
		return exitOK
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(c.stderr, "enqueue: unknown command %q (one of notify, verify, click2call, status, cancel, file)\nRun 'enqueue --help' for usage.\n", truncate(name, 40))
		return exitBadInput
	}
	err := cmd.run(c, ctx, name, args[1:])
	var hr *helpRequest
	var se *silentExit
	var ue *usageError
	var fe *queue.FieldError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &hr):
		c.commandHelp(cmd, hr.fs)
		return exitOK
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &ue):
		fmt.Fprintf(c.stderr, "enqueue %s: %v\nRun 'enqueue %s --help' for usage.\n", name, err, name)
	case errors.As(err, &fe):
		// The field first, whatever wrapped it: "enqueue: to: not a valid phone number".
		fmt.Fprintf(c.stderr, "enqueue: %s\n", fe.Error())
	default:
		fmt.Fprintf(c.stderr, "enqueue: %v\n", err)
	}
	return exitCode(err)
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// isTerminal reports whether w is a terminal (the progress bar is shown only there by default).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
