package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"github.com/schollz/progressbar/v3"

	"github.com/voicequeue/voicequeue/internal/queue"
)

const (
	defaultAPI     = "http://127.0.0.1:8080"
	defaultRegion  = "CN"
	defaultTimeout = 30 * time.Second
)

// connFlags say where jobs go; every command has them.
type connFlags struct {
	api       string
	token     string
	tokenFile string
	redis     string
	region    string
	timeout   time.Duration
}

func (c *cli) addConnFlags(fs *flag.FlagSet, f *connFlags) {
	api := c.getenv("VOICEQUEUE_API")
	if api == "" {
		api = defaultAPI
	}
	region := c.getenv("VOICEQUEUE_DEFAULT_REGION")
	if region == "" {
		region = defaultRegion
	}
	fs.StringVar(&f.api, "api", api, "gateway base `URL` (env VOICEQUEUE_API)")
	fs.StringVar(&f.token, "token", "", "bearer `TOKEN` for the gateway; prefer env VOICEQUEUE_API_TOKEN or --token-file (a flag shows in ps)")
	fs.StringVar(&f.tokenFile, "token-file", "", "read the bearer token from `FILE`")
	fs.StringVar(&f.redis, "redis", "", "talk straight to Redis at `URL` instead of the gateway (REDIS_URL is not used implicitly)")
	fs.StringVar(&f.region, "region", region, "`REGION` of numbers written without +country code (env VOICEQUEUE_DEFAULT_REGION)")
	fs.DurationVar(&f.timeout, "timeout", defaultTimeout, "give up on a request after `DURATION`")
}

// jobFlags are the request fields every job command shares.
type jobFlags struct {
	idempotencyKey string
	callbackURL    string
	at             string
	ttl            string
	timezone       string
}

func addJobFlags(fs *flag.FlagSet, f *jobFlags, keyHelp string) {
	fs.StringVar(&f.idempotencyKey, "idempotency-key", "", keyHelp)
	fs.StringVar(&f.callbackURL, "callback-url", "", "POST the signed result to `URL` when the job ends (callback_url)")
	fs.StringVar(&f.at, "at", "", "call at `TIME`, RFC 3339 such as 2026-01-02T15:04:05+08:00 (scheduled_at)")
	fs.StringVar(&f.ttl, "ttl", "", "give up if not dialled within `DURATION` such as 10m (default 5m for verify, 24h otherwise)")
	fs.StringVar(&f.timezone, "timezone", "", "the callee's IANA time `ZONE` for calling windows, e.g. Asia/Shanghai")
}

func (f *jobFlags) apply(req *queue.Request) {
	req.IdempotencyKey = f.idempotencyKey
	req.CallbackURL = f.callbackURL
	req.ScheduledAt = f.at
	req.TTL = f.ttl
	req.Timezone = f.timezone
}

// newFlagSet returns a silent FlagSet: run prints errors and help itself.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("enqueue "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseArgs parses flags wherever they appear among the positional arguments ("status ID --api
// URL"); everything after "--" is positional.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpRequest{fs: fs}
			}
			return nil, &usageError{msg: err.Error()}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// autoBool is a boolean flag that remembers whether it was given: unset means "decide".
type autoBool struct{ set, val bool }

func (b *autoBool) String() string {
	if b == nil || !b.set {
		return "auto"
	}
	return strconv.FormatBool(b.val)
}

func (b *autoBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("must be true or false")
	}
	b.set, b.val = true, v
	return nil
}

func (b *autoBool) IsBoolFlag() bool { return true }

// conn is a resolved destination: the backend and the validator that checks requests
// client-side the way that backend will.
type conn struct {
	be backend
	v  *queue.Validator
	// validatesItems: the backend validates each batch item itself before writing any, with
	// the same validator (the Redis backend's Submitter), so file lines need no second pass.
	validatesItems bool
	// serverValidates: the backend is the gateway, which validates each batch item with the
	// same rules but its own default region (see linePrep.serverValidates).
	serverValidates bool
}

// connect resolves the connection flags, without any network traffic: bad values are usage
// errors. conns is how many requests may be in flight at once.
func (c *cli) connect(fs *flag.FlagSet, f *connFlags, conns int) (*conn, error) {
	region := strings.ToUpper(strings.TrimSpace(f.region))
	if phonenumbers.GetCountryCodeForRegion(region) == 0 {
		return nil, usagef("region: unknown region %q: an ISO 3166 code such as CN or US", truncate(f.region, 20))
	}
	if f.timeout <= 0 {
		return nil, usagef("timeout: must be greater than 0")
	}
	if f.redis != "" {
		if flagSet(fs, "api") || flagSet(fs, "token") || flagSet(fs, "token-file") {
			return nil, usagef("redis: give --redis or --api/--token, not both")
		}
		key, err := codeKey(c.getenv)
		if err != nil {
			return nil, err
		}
		// Callback URLs are vetted here as the gateway vets them, since no gateway sees them.
		guard, err := callbackGuard(c.getenv)
		if err != nil {
			return nil, err
		}
		check := guard.CheckURL
		be, err := newRedisBackend(redisConfig{
			URL:              f.redis,
			DefaultRegion:    region,
			CodeKey:          key,
			CheckCallbackURL: check,
			Timeout:          f.timeout,
			Conns:            max(conns*16, 10), // a Submitter writes 16 jobs of a batch at once
			Logger:           slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			return nil, err
		}
		return &conn{be: be, v: queue.NewValidator(queue.ValidatorOptions{DefaultRegion: region, CheckCallbackURL: check}), validatesItems: true}, nil
	}
	base, err := parseAPIURL(f.api)
	if err != nil {
		return nil, err
	}
	token, err := c.token(f)
	if err != nil {
		return nil, err
	}
	return &conn{
		be:              newHTTPBackend(base, token, f.timeout, conns),
		v:               queue.NewValidator(queue.ValidatorOptions{DefaultRegion: region}),
		serverValidates: true,
	}, nil
}

// token resolves the bearer token: --token, else --token-file, else VOICEQUEUE_API_TOKEN (or
// the file named by VOICEQUEUE_API_TOKEN_FILE; of a comma-separated list, as the gateway
// accepts during a rotation, the first).
func (c *cli) token(f *connFlags) (string, error) {
	switch {
	case f.token != "":
		return f.token, nil
	case f.tokenFile != "":
		data, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return "", usagef("token-file: %v", err)
		}
		tok := strings.TrimSpace(string(data))
		if tok == "" || strings.ContainsAny(tok, "\r\n") {
			return "", usagef("token-file: must hold one non-empty line")
		}
		return tok, nil
	}
	tok, err := secretEnv(c.getenv, "VOICEQUEUE_API_TOKEN")
	if err != nil {
		return "", err
	}
	for _, t := range strings.Split(tok, ",") {
		if t = strings.TrimSpace(t); t != "" {
			return t, nil
		}
	}
	return "", nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}

func noArgs(pos []string) error {
	if len(pos) > 0 {
		return usagef("unexpected argument %q (flags start with --)", truncate(pos[0], 40))
	}
	return nil
}

func (c *cli) notify(ctx context.Context, name string, args []string) error {
	fs := newFlagSet(name)
	var cf connFlags
	var jf jobFlags
	var params stringList
	req := queue.Request{Kind: string(queue.KindNotify)}
	fs.StringVar(&req.To, "to", "", "callee `NUMBER`, E.164 (+8613800000001) or national in --region (required)")
	fs.StringVar(&req.TemplateID, "template", "", "voice template `ID` (template_id)")
	fs.Var(&params, "param", "template parameter `VALUE`, in order; repeat for each (template_params)")
	fs.StringVar(&req.VoiceFile, "voice-file", "", "approved voice `FILE` to play instead of a template (voice_file)")
	fs.IntVar(&req.CollectDigits, "collect-digits", 0, "collect up to `N` keypad digits after playing (collect_digits)")
	bulk := fs.Bool("bulk", false, "queue behind single notifications, as campaigns are (bulk)")
	addJobFlags(fs, &jf, "return the existing job if this `KEY` was already used (idempotency_key)")
	c.addConnFlags(fs, &cf)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	req.TemplateParams = params
	if *bulk {
		req.Bulk = bulk
	}
	return c.submitOne(ctx, fs, &cf, &jf, req)
}

func (c *cli) verify(ctx context.Context, name string, args []string) error {
	fs := newFlagSet(name)
	var cf connFlags
	var jf jobFlags
	req := queue.Request{Kind: string(queue.KindVerify)}
	fs.StringVar(&req.To, "to", "", "callee `NUMBER`, E.164 or national in --region (required)")
	fs.StringVar(&req.Code, "code", "", "the code to read out, 2 to 8 `DIGITS` (default: generated)")
	addJobFlags(fs, &jf, "return the existing job if this `KEY` was already used (idempotency_key)")
	c.addConnFlags(fs, &cf)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	return c.submitOne(ctx, fs, &cf, &jf, req)
}

func (c *cli) click2call(ctx context.Context, name string, args []string) error {
	fs := newFlagSet(name)
	var cf connFlags
	var jf jobFlags
	req := queue.Request{Kind: string(queue.KindClick2Call)}
	fs.StringVar(&req.From, "from", "", "the calling party's `NUMBER`, called first (required)")
	fs.StringVar(&req.To, "to", "", "the called party's `NUMBER` (required)")
	fs.IntVar(&req.MaxDurationMinutes, "max-duration", 0, "end the call after `MINUTES` (0 = no limit; max_duration_minutes)")
	fs.BoolVar(&req.Record, "record", false, "record the call")
	addJobFlags(fs, &jf, "return the existing job if this `KEY` was already used (idempotency_key)")
	c.addConnFlags(fs, &cf)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	return c.submitOne(ctx, fs, &cf, &jf, req)
}

// submitOne validates a request client-side, submits it and prints the job ID alone on stdout.
func (c *cli) submitOne(ctx context.Context, fs *flag.FlagSet, cf *connFlags, jf *jobFlags, req queue.Request) error {
	jf.apply(&req)
	cn, err := c.connect(fs, cf, 1)
	if err != nil {
		return err
	}
	defer cn.be.Close()
	job, _, err := cn.v.Validate(req)
	if err != nil {
		return err
	}
	normalise(&req, job)
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	res, err := cn.be.Submit(ctx, req)
	if err != nil {
		return err
	}
	if res.Existing {
		fmt.Fprintf(c.stderr, "enqueue: idempotency key seen: job %s already exists (state %s)\n", res.ID, res.State)
	}
	_, err = fmt.Fprintln(c.stdout, res.ID)
	return err
}

// jobID checks an ID argument the way the service will.
func jobID(pos []string) (string, error) {
	switch {
	case len(pos) == 0:
		return "", usagef("id: a job ID is required, such as j_0123456789abcdefghij")
	case len(pos) > 1:
		return "", usagef("unexpected argument %q: give one job ID", truncate(pos[1], 40))
	}
	id := pos[0]
	ok := id != "" && len(id) <= 64
	for i := 0; ok && i < len(id); i++ {
		ch := id[i]
		ok = ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-'
	}
	if !ok {
		return "", usagef("id: %q is not a job ID (1 to 64 letters, digits, _ or -)", truncate(id, 40))
	}
	return id, nil
}

func (c *cli) status(ctx context.Context, name string, args []string) error {
	return c.recordCommand(ctx, name, args, backend.Status)
}

func (c *cli) cancel(ctx context.Context, name string, args []string) error {
	return c.recordCommand(ctx, name, args, backend.Cancel)
}

// recordCommand runs status or cancel: one job ID in, the record as indented JSON out.
func (c *cli) recordCommand(ctx context.Context, name string, args []string, op func(backend, context.Context, string) (json.RawMessage, error)) error {
	fs := newFlagSet(name)
	var cf connFlags
	c.addConnFlags(fs, &cf)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	id, err := jobID(pos)
	if err != nil {
		return err
	}
	cn, err := c.connect(fs, &cf, 1)
	if err != nil {
		return err
	}
	defer cn.be.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	rec, err := op(cn.be, ctx, id)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, rec, "", "  "); err != nil {
		return fmt.Errorf("read job record: %w", err)
	}
	buf.WriteByte('\n')
	_, err = c.stdout.Write(buf.Bytes())
	return err
}

const fileAbout = `Submit every job of a CSV or JSONL file (or stdin with "-"), in batches.

The format comes from the extension (.csv, .jsonl, .ndjson) or --format; stdin is sniffed.
JSONL: one job object per line, with the API's field names; blank lines are skipped.
CSV: a header row naming the columns, from kind, to, from, template_id, template_params,
voice_file, code, collect_digits, max_duration_minutes, record, idempotency_key, callback_url,
scheduled_at, ttl, bulk, timezone (kind and to are required; an empty cell leaves the field
out). template_params holds the parameters separated by "|". Notify jobs default to bulk=true
unless the line says otherwise; --callback-url, --at, --ttl and --timezone fill the lines that
leave those fields empty.

Every line is validated, with the API's rules: each bad line is reported on stderr as "line N:
FIELD: message" and skipped. With --redis the CLI does it; with --api the gateway does it for
lines whose numbers are in international form (+...), and the CLI for the others (reading them
with --region and sending them in E.164). Good lines go in batches of up to 1,000
(several in flight) with a progress bar on stderr (shown on a terminal, or with --progress).
The summary "submitted N, rejected M" ends the output on stderr; --ids prints the job IDs on
stdout, one per line, in file order. If a batch fails as a whole (network, server error) the
line ranges not submitted are reported, nothing more is sent, and the exit status is 1;
--idempotency-key PREFIX gives lines without a key the key PREFIX-LINE, so that the same
file can then be submitted again without creating jobs twice.
Exit status: 0 all submitted, 2 some lines rejected, 1 a batch not submitted or another error.`

func (c *cli) file(ctx context.Context, name string, args []string) error {
	fs := newFlagSet(name)
	var cf connFlags
	var jf jobFlags
	var progress autoBool
	format := fs.String("format", "", "`FORMAT` of the input: csv or jsonl (default: from the extension)")
	ids := fs.Bool("ids", false, "print the job IDs on stdout, one per line, in file order")
	fs.Var(&progress, "progress", "show the progress bar even when stderr is not a terminal (--progress=false hides it)")
	batchSize := fs.Int("batch-size", queue.MaxBatch, "`N` jobs per batch request (at most 1000)")
	inFlight := fs.Int("concurrency", 4, "`N` batch requests in flight at once (1 to 16)")
	addJobFlags(fs, &jf, "give lines without an idempotency_key the key `PREFIX`-LINE, so a rerun of the same file is safe")
	c.addConnFlags(fs, &cf)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef("path: a CSV or JSONL file is required (\"-\" for stdin)")
	case len(pos) > 1:
		return usagef("unexpected argument %q: give one file", truncate(pos[1], 40))
	case *batchSize < 1 || *batchSize > queue.MaxBatch:
		return usagef("batch-size: must be between 1 and %d", queue.MaxBatch)
	case *inFlight < 1 || *inFlight > 16:
		return usagef("concurrency: must be between 1 and 16")
	}
	path := pos[0]
	var ff fileFormat
	if *format != "" {
		if ff, err = parseFormat(*format); err != nil {
			return err
		}
	} else if path != "-" {
		if ff, err = formatOf(path); err != nil {
			return err
		}
	}
	cn, err := c.connect(fs, &cf, *inFlight)
	if err != nil {
		return err
	}
	defer cn.be.Close()
	if c.getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(fileGCPercent))
	}
	if err := checkFileDefaults(cn.v, &jf); err != nil {
		return err
	}

	var in io.Reader = c.stdin
	total := int64(-1) // unknown: a spinner with a count
	showBar := progress.val || (!progress.set && c.isTerminal(c.stderr))
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return usagef("path: %v", err)
		}
		defer f.Close()
		in = f
		if showBar {
			total = countLines(f)
		}
	}
	br := bufio.NewReaderSize(in, 64<<10)
	if ff == "" {
		ff = sniffFormat(br)
	}
	rr, err := newRecordReader(br, ff)
	if err != nil {
		var fe *queue.FieldError
		if errors.As(err, &fe) { // the CSV header
			fmt.Fprintf(c.stderr, "enqueue: line 1: %v\n", err)
			return &silentExit{code: exitBadInput}
		}
		return err
	}
	if ff == formatCSV && total > 0 {
		total-- // the header
	}
	rep := &reporter{stderr: c.stderr, stdout: bufio.NewWriterSize(c.stdout, 64<<10)}
	if showBar {
		rep.bar = newBar(c.stderr, total)
	}
	prep := &linePrep{
		v: cn.v, skipValidation: cn.validatesItems, serverValidates: cn.serverValidates, callbackURL: jf.callbackURL, at: jf.at, ttl: jf.ttl, timezone: jf.timezone,
		keyPrefix: jf.idempotencyKey, bulk: true,
	}
	start := time.Now()
	st, err := submitFile(ctx, cn.be, rr, prep, bulkOptions{BatchSize: *batchSize, InFlight: *inFlight, IDs: *ids}, rep)
	flushErr := rep.finish(st.Submitted + st.Rejected + st.Unsent)
	fmt.Fprintln(c.stderr, st.summary(time.Since(start)))
	switch {
	case err != nil:
		return err
	case flushErr != nil:
		return fmt.Errorf("write IDs: %w", flushErr)
	case st.Failed:
		return &silentExit{code: exitFailure}
	case st.Rejected > 0:
		return &silentExit{code: exitBadInput}
	}
	return nil
}

// fileGCPercent is the garbage collector's target while a file is submitted (GOGC, unless the
// environment sets it). The live heap stays small whatever the file's size (a few batches, see
// batchPool), but validating a number allocates a few KiB of garbage (libphonenumber), so at
// the default of 100 the collector would run every few hundred lines, on the CPUs that the
// gateway and Redis need when they share the machine. 400 trades a few more MiB of memory for
// about a quarter of the collections.
const fileGCPercent = 400

// checkFileDefaults validates the file-wide job flags once, so that a bad --at or --ttl is one
// usage error rather than the same error on every line.
func checkFileDefaults(v *queue.Validator, jf *jobFlags) error {
	probe := queue.Request{Kind: string(queue.KindVerify), To: "+8613800000001",
		CallbackURL: jf.callbackURL, ScheduledAt: jf.at, TTL: jf.ttl, Timezone: jf.timezone}
	if jf.idempotencyKey != "" {
		probe.IdempotencyKey = jf.idempotencyKey + "-1000000"
	}
	_, _, err := v.Validate(probe)
	return err
}

// countLines counts the lines of a regular file for the progress bar's total and rewinds it;
// -1 when it can't (not a regular file).
func countLines(f *os.File) int64 {
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return -1
	}
	buf := make([]byte, 256<<10)
	var n int64
	last := byte('\n')
	for {
		k, err := f.Read(buf)
		if k > 0 {
			n += int64(bytes.Count(buf[:k], []byte{'\n'}))
			last = buf[k-1]
		}
		if err != nil {
			break
		}
	}
	if last != '\n' {
		n++
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return -1
	}
	return n
}

// newBar returns the progress bar on stderr; total -1 shows a count without a bar.
func newBar(w io.Writer, total int64) *progressbar.ProgressBar {
	if total == 0 {
		total = -1
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("submitting"),
		progressbar.OptionSetItsString("jobs"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetSpinnerChangeInterval(0), // no render goroutine
	)
}

// helpRequest is returned when --help is among a command's flags; it carries the command's
// flags for the help text.
type helpRequest struct{ fs *flag.FlagSet }

func (h *helpRequest) Error() string { return "help requested" }
func (h *helpRequest) Unwrap() error { return flag.ErrHelp }

// Flag groups for help: the command's own flags come first.
var (
	jobFlagNames  = []string{"idempotency-key", "callback-url", "at", "ttl", "timezone"}
	connFlagNames = []string{"api", "token", "token-file", "redis", "region", "timeout"}
)

// commandHelp prints a command's help on stdout.
func (c *cli) commandHelp(cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(c.stdout, "Usage: enqueue %s %s\n\n%s\n", cmd.name, cmd.usage, cmd.about)
	in := func(names []string, name string) bool {
		for _, n := range names {
			if n == name {
				return true
			}
		}
		return false
	}
	group := func(title string, pick func(string) bool) {
		first := true
		fs.VisitAll(func(f *flag.Flag) {
			if !pick(f.Name) {
				return
			}
			if first {
				fmt.Fprintf(c.stdout, "\n%s:\n", title)
				first = false
			}
			typ, usage := flag.UnquoteUsage(f)
			name := "--" + f.Name
			if typ != "" {
				name += " " + typ
			}
			fmt.Fprintf(c.stdout, "  %s\n    \t%s", name, usage)
			switch f.DefValue {
			case "", "0", "false", "auto":
			default:
				fmt.Fprintf(c.stdout, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(c.stdout)
		})
	}
	group("Flags", func(n string) bool { return !in(jobFlagNames, n) && !in(connFlagNames, n) })
	group("Job flags", func(n string) bool { return in(jobFlagNames, n) })
	group("Where jobs go", func(n string) bool { return in(connFlagNames, n) })
	if !strings.Contains(cmd.about, "Exit status") {
		fmt.Fprint(c.stdout, "\nExit status: 0 success, 2 bad input (the message names the field), 1 anything else.\n")
	}
}
