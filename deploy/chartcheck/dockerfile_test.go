package chartcheck

import (
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile reads the Dockerfile (docker itself is not needed): a multi-stage build of every
// binary in cmd/, static, into a shell-less final image running as the user the chart runs as,
// holding every binary the chart starts.
func TestDockerfile(t *testing.T) {
	df := string(readFile(t, repoRoot+"/Dockerfile"))
	froms := regexp.MustCompile(`(?m)^FROM\s+(?:--platform=\S+\s+)?(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("%d FROM lines, want a build stage and a final stage", len(froms))
	}
	final := froms[len(froms)-1][1]
	if final != "scratch" && !strings.Contains(final, "distroless/static") {
		t.Errorf("final stage FROM %s, want scratch or distroless/static (no shell, no libc)", final)
	}
	for _, want := range []string{"CGO_ENABLED=0", "go build", "./cmd/...", "/usr/local/bin/", "go mod download"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\d+)(?::(\d+))?\s*$`).FindStringSubmatch(df)
	if user == nil || user[1] != "65532" {
		t.Fatalf("final USER %v, want 65532 (numeric, so that runAsNonRoot can check it)", user)
	}
	if i, j := strings.LastIndex(df, "USER "), strings.LastIndex(df, "FROM "); i < j {
		t.Error("USER is not set in the final stage")
	}

	// Every binary the chart starts is a main package under cmd/, which ./cmd/... builds into
	// /usr/local/bin, and every pod runs as the image's user.
	rel := scenarios[2].render(t)
	for name, d := range rel.Deployments() {
		pod := d.Spec.Template.Spec
		if u := pod.SecurityContext.RunAsUser; u == nil || *u != 65532 {
			t.Errorf("%s: runAsUser %v, want the image's 65532", short(name), u)
		}
		for _, c := range pod.Containers {
			bin := path.Base(c.Command[0])
			main := filepath.Join(repoRoot, "cmd", bin, "main.go")
			if _, err := os.Stat(main); err != nil {
				t.Errorf("%s runs %s, but there is no %s", short(name), c.Command[0], main)
			}
		}
	}
}

func TestDockerignore(t *testing.T) {
	ignored := map[string]bool{}
	for _, l := range strings.Split(string(readFile(t, repoRoot+"/.dockerignore")), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			ignored[strings.Trim(l, "/")] = true
		}
	}
	if !ignored[".git"] {
		t.Error(".dockerignore does not exclude .git")
	}
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "internal", "*.go", "**/*.go"} {
		if ignored[needed] {
			t.Errorf(".dockerignore excludes %s, which the build needs", needed)
		}
	}
	// Files excluded from the context must not be embedded by the code that is built.
	err := filepath.WalkDir(repoRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || p == filepath.Join(repoRoot, "deploy")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`(?m)^//go:embed (.+)$`).FindAllStringSubmatch(string(src), -1) {
			if strings.Contains(m[1], "testdata") || strings.Contains(m[1], "_test.go") {
				t.Errorf("%s embeds %s, which .dockerignore leaves out of the build", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
