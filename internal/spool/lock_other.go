//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package spool

import (
	"fmt"
	"os"
	"path/filepath"
)

// lockDir opens dir/LOCK without locking it: on this platform nothing stops two processes from
// sharing a spool directory, so give each its own.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open spool lock: %w", err)
	}
	return f, nil
}

func isNoSpace(error) bool { return false }
