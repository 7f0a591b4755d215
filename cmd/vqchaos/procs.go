package main

import (
	"context"
	"path/filepath"

	"github.com/voicequeue/voicequeue/internal/procs"
)

// build builds cmd/worker, cmd/gateway and cmd/voicesim into dir/bin and returns that directory.
func build(ctx context.Context, dir string) (string, error) {
	root, err := procs.ModuleRoot("vqchaos")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "bin")
	if err := procs.Build(ctx, root, out, "./cmd/worker", "./cmd/gateway", "./cmd/voicesim"); err != nil {
		return "", err
	}
	return out, nil
}

// proc is one child process, its output appended to a log file.
type proc = procs.Proc

// startProc starts path with args and exactly env (plus PATH and HOME), appending its output to
// logPath, in a process group of its own: a Ctrl-C in the terminal reaches vqchaos, which stops
// the children in order, rather than every child at once.
func startProc(name, path string, args []string, env map[string]string, logPath string) (*proc, error) {
	return procs.Start(name, path, args, env, logPath, true)
}

var (
	freeAddr = procs.FreeAddr
	waitHTTP = procs.WaitHTTP
)
