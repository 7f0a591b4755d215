// Package config reads the binaries' settings: each setting is a flag whose default comes from an
// environment variable (Helm sets env, people set flags), and secrets come from an environment
// variable or a mounted file (NAME_FILE), never from a flag value visible in `ps`.
package config

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Getenv reads the environment; tests pass a map's lookup instead of os.Getenv.
type Getenv func(string) string

// Set registers flags on a FlagSet with defaults from the environment, and records every
// environment variable it reads so that --help (and the README table) can list them.
type Set struct {
	FS     *flag.FlagSet
	Env    Getenv
	errs   []error
	Names  []Var
	lookup map[string]bool
}

// Var describes one setting for documentation.
type Var struct {
	Flag, Env, Default, Usage string
	Secret                    bool
}

// NewSet returns a Set on fs reading env.
func NewSet(fs *flag.FlagSet, env Getenv) *Set {
	if env == nil {
		env = os.Getenv
	}
	return &Set{FS: fs, Env: env, lookup: map[string]bool{}}
}

func (s *Set) note(v Var) {
	s.Names = append(s.Names, v)
	s.lookup[v.Env] = true
}

func usage(u, env string) string {
	if env == "" {
		return u
	}
	return u + " (env " + env + ")"
}

// String registers a string flag.
func (s *Set) String(p *string, name, env, def, u string) {
	if v := s.envValue(env); v != "" {
		def = v
	}
	s.note(Var{Flag: name, Env: env, Default: def, Usage: u})
	s.FS.StringVar(p, name, def, usage(u, env))
}

// Int registers an int flag.
func (s *Set) Int(p *int, name, env string, def int, u string) {
	if v := s.envValue(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not an integer", env, v))
		} else {
			def = n
		}
	}
	s.note(Var{Flag: name, Env: env, Default: strconv.Itoa(def), Usage: u})
	s.FS.IntVar(p, name, def, usage(u, env))
}

// Float registers a float flag.
func (s *Set) Float(p *float64, name, env string, def float64, u string) {
	if v := s.envValue(env); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not a number", env, v))
		} else {
			def = f
		}
	}
	s.note(Var{Flag: name, Env: env, Default: strconv.FormatFloat(def, 'g', -1, 64), Usage: u})
	s.FS.Float64Var(p, name, def, usage(u, env))
}

// Duration registers a duration flag.
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, u string) {
	if v := s.envValue(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not a duration (e.g. 30s, 5m)", env, v))
		} else {
			def = d
		}
	}
	s.note(Var{Flag: name, Env: env, Default: def.String(), Usage: u})
	s.FS.DurationVar(p, name, def, usage(u, env))
}

// Bool registers a bool flag.
func (s *Set) Bool(p *bool, name, env string, def bool, u string) {
	if v := s.envValue(env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not a boolean", env, v))
		} else {
			def = b
		}
	}
	s.note(Var{Flag: name, Env: env, Default: strconv.FormatBool(def), Usage: u})
	s.FS.BoolVar(p, name, def, usage(u, env))
}

// Secret reads a secret from env or from the file named by env+"_FILE" (trailing newline
// trimmed). It registers no flag: secret values never appear on a command line. The file wins
// when both are set, so a mounted Secret can override a stale variable.
func (s *Set) Secret(p *string, env, u string) {
	s.note(Var{Env: env, Usage: u + " (or " + env + "_FILE)", Secret: true})
	s.lookup[env+"_FILE"] = true
	*p = s.envValue(env)
	if path := s.envValue(env + "_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s_FILE: %w", env, err))
			return
		}
		*p = strings.TrimRight(string(b), "\r\n")
	}
}

func (s *Set) envValue(env string) string {
	if env == "" {
		return ""
	}
	return strings.TrimSpace(s.Env(env))
}

// Parse parses args and returns the first problem met while reading the environment or flags.
func (s *Set) Parse(args []string) error {
	if err := s.FS.Parse(args); err != nil {
		return err
	}
	if len(s.errs) > 0 {
		return fmt.Errorf("config: %w", s.errs[0])
	}
	return nil
}

// Knows reports whether the set reads environment variable name (tests check the Helm chart
// against it).
func (s *Set) Knows(name string) bool { return s.lookup[name] }

// List splits a comma-separated list, dropping empty items.
func List(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// PrintSecrets lists the secret settings, which have no flag, for --help.
func (s *Set) PrintSecrets(w io.Writer) {
	fmt.Fprintf(w, "\nSecrets (environment only, or NAME_FILE naming a file that holds the value):\n")
	for _, v := range s.Names {
		if v.Secret {
			fmt.Fprintf(w, "  %s\n    \t%s\n", v.Env, v.Usage)
		}
	}
}
