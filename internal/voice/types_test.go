package voice

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFlagJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Flag
		wantErr bool
	}{
		{`"true"`, true, false},
		{`"false"`, false, false},
		{`true`, false, true}, // a JSON boolean is an invalid request (ref §4.1)
		{`"TRUE"`, false, true},
		{`1`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var f Flag
			err := json.Unmarshal([]byte(tt.in), &f)
			if (err != nil) != tt.wantErr || f != tt.want {
				t.Fatalf("Unmarshal(%s) = %v, %v; want %v, error %v", tt.in, f, err, tt.want, tt.wantErr)
			}
		})
	}
	for f, want := range map[Flag]string{true: `"true"`, false: `"false"`} {
		if got, _ := json.Marshal(f); string(got) != want {
			t.Errorf("Marshal(%v) = %s, want %s", f, got, want)
		}
	}
}

func TestEncodedURLJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(EncodedURL("https://www.huawei.com:9330/fee"))
	if err != nil || string(b) != `"aHR0cHM6Ly93d3cuaHVhd2VpLmNvbTo5MzMwL2ZlZQ=="` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
	var u EncodedURL
	if err := json.Unmarshal(b, &u); err != nil || u != "https://www.huawei.com:9330/fee" {
		t.Fatalf("Unmarshal = %q, %v", u, err)
	}
	for _, bad := range []string{`"https://plain.example.com"`, `1`} {
		if err := json.Unmarshal([]byte(bad), &u); err == nil {
			t.Errorf("Unmarshal(%s) accepted a value that is not Base64", bad)
		}
	}
}

// TestTimestampRoundTrip: every accepted timestamp form re-encodes to a value that decodes to the
// same instant, in the same form.
func TestTimestampRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Time
		unix bool
		out  string
	}{
		{`"2019-01-24 03:04:24"`, time.Date(2019, 1, 24, 3, 4, 24, 0, time.UTC), false, `"2019-01-24 03:04:24"`},
		{`"2019-01-24  03:04:24"`, time.Date(2019, 1, 24, 3, 4, 24, 0, time.UTC), false, `"2019-01-24 03:04:24"`},
		{`1548299064`, time.Unix(1548299064, 0), true, `1548299064`},
		{`"1548299064"`, time.Unix(1548299064, 0), true, `1548299064`},
		{`1548299064000`, time.Unix(1548299064, 0), true, `1548299064`},
		{`1548299064123`, time.UnixMilli(1548299064123), true, `1548299064123`},
		{`9999999999999999`, time.UnixMilli(9999999999999999), true, `9999999999999999`},
		{`999999999999`, time.Unix(999999999999, 0), true, `999999999999`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			var ts Timestamp
			if err := json.Unmarshal([]byte(tt.in), &ts); err != nil {
				t.Fatal(err)
			}
			if !ts.Equal(tt.want) || ts.Unix != tt.unix {
				t.Fatalf("decoded %v (unix %v), want %v (unix %v)", ts.Time, ts.Unix, tt.want, tt.unix)
			}
			out, err := json.Marshal(ts)
			if err != nil || string(out) != tt.out {
				t.Fatalf("Marshal = %s, %v; want %s", out, err, tt.out)
			}
			var again Timestamp
			if err := json.Unmarshal(out, &again); err != nil || !again.Equal(ts.Time) || again.Unix != ts.Unix {
				t.Fatalf("re-decoded %v, %v", again, err)
			}
		})
	}
	for _, bad := range []string{`"yesterday"`, `-1`, `1.5`, `"2019-01-24T03:04:24Z"`} {
		var ts Timestamp
		if err := json.Unmarshal([]byte(bad), &ts); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want an error", bad, ts)
		}
	}
}
