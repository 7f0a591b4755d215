package chartcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// helmVersion is the Helm the Makefile installs (and the library this module renders with).
const helmVersion = "v3.22.0"

// helmBinary finds helm: $HELM, PATH, or where `go install` puts it.
func helmBinary() string {
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if h, err := exec.LookPath("helm"); err == nil {
		return h
	}
	out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output()
	if err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		candidates := []string{}
		if len(lines) > 0 && lines[0] != "" {
			candidates = append(candidates, filepath.Join(lines[0], "helm"))
		}
		if len(lines) > 1 {
			for _, p := range filepath.SplitList(lines[1]) {
				candidates = append(candidates, filepath.Join(p, "bin", "helm"))
			}
		}
		for _, c := range candidates {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
	}
	return ""
}

// TestHelmLint runs `helm lint --strict` with the default values and with every optional part on.
func TestHelmLint(t *testing.T) {
	helm := helmBinary()
	if helm == "" {
		t.Skip("helm lint skipped: no helm binary; install it with `go install helm.sh/helm/v3/cmd/helm@" + helmVersion + "` (or set HELM)")
	}
	for _, args := range [][]string{
		{"lint", "--strict", chartDir},
		{"lint", "--strict", chartDir, "-f", "testdata/values-all.yaml"},
		{"lint", "--strict", chartDir, "-f", "testdata/values-existing-secret.yaml"},
		{"template", "vq", chartDir, "--kube-version", "1.31.0", "--api-versions", MonitoringAPI, "--api-versions", KEDAAPI, "-f", "testdata/values-all.yaml"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(helm, args...)
			cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			if args[0] == "lint" && !strings.Contains(string(out), "0 chart(s) failed") {
				t.Errorf("helm lint output:\n%s", out)
			}
		})
	}
}
