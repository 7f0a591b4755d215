package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
)

// A single submission prints the job ID alone on stdout, so scripts can capture it:
//
//	id=$(enqueue notify --to +8613800000001 --template T1 --param Alice)
func Example() {
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"id":"j_0123456789abcdefghij","state":"queued"}`)
	}))
	defer gateway.Close()

	code := run(context.Background(),
		[]string{"notify", "--to", "+8613800000001", "--template", "T1", "--param", "Alice", "--api", gateway.URL},
		os.Stdin, os.Stdout, os.Stderr)
	fmt.Println("exit status", code)
	// Output:
	// j_0123456789abcdefghij
	// exit status 0
}

// A file goes in batches; each bad line is reported by number and skipped, and --ids prints the
// IDs of the jobs submitted, in file order. Numbers in national form are read with --region (CN
// by default) and checked before sending; numbers in international form (+…) are checked by the
// gateway, which reports a bad one by item, and so by line, the same way.
func Example_file() {
	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch struct {
			Jobs []struct {
				To string `json:"to"`
			} `json:"jobs"`
		}
		_ = json.NewDecoder(r.Body).Decode(&batch)
		results := []map[string]any{}
		for i, j := range batch.Jobs {
			results = append(results, map[string]any{"index": i, "id": "j_" + j.To[1:], "state": "queued"})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"accepted": len(results), "results": results})
	}))
	defer gateway.Close()

	csv := "kind,to,template_id,template_params\n" +
		"notify,+8613800000001,T1,Alice|42.50\n" +
		"notify,138,T1,Bob|7.00\n" +
		"notify,13800000003,T1,\"Carol, Jr.|1.00\"\n"
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"file", "-", "--ids", "--api", gateway.URL},
		strings.NewReader(csv), os.Stdout, &stderr)
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(line, "line ") || strings.HasPrefix(line, "submitted") {
			fmt.Println(strings.SplitN(line, " in ", 2)[0]) // without the timing
		}
	}
	fmt.Println("exit status", code)
	// Output:
	// j_8613800000001
	// j_8613800000003
	// line 3: to: not a valid phone number (default region CN)
	// submitted 2, rejected 1
	// exit status 2
}
