package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// cmp is how a result's value is judged against its bound.
type cmp int

const (
	atLeast      cmp = iota // value ≥ bound
	atMost                  // value ≤ bound
	below                   // value < bound
	ratioAtLeast            // ratio ≥ bound
)

// result is one measured criterion: a value, the anchor it is measured against in the same run,
// and the target. It prints as one `bench:` line.
type result struct {
	Target int    // issue 7 numbering (1–5), 0 for the caps run of issue 4
	Name   string // snake_case; the unit is part of the name (…_jobs_per_second, …_ms)
	Value  float64
	Anchor float64
	Cmp    cmp
	Bound  float64
	// Detail is a short human note for the table (what the anchor is, what limited the value).
	Detail string
	// Err marks a measurement that could not be taken; ok is then false.
	Err error
}

// Ratio is Value/Anchor (NaN when the anchor is zero).
func (r result) Ratio() float64 {
	if r.Anchor == 0 {
		return math.NaN()
	}
	return r.Value / r.Anchor
}

// OK reports whether the target is met.
func (r result) OK() bool {
	if r.Err != nil || math.IsNaN(r.Value) {
		return false
	}
	switch r.Cmp {
	case atLeast:
		return r.Value >= r.Bound
	case atMost:
		return r.Value <= r.Bound
	case below:
		return r.Value < r.Bound
	case ratioAtLeast:
		return r.Ratio() >= r.Bound
	}
	return false
}

// TargetText is the target as printed: "ratio>=0.5", "value<250".
func (r result) TargetText() string {
	b := num(r.Bound)
	switch r.Cmp {
	case atLeast:
		return "value>=" + b
	case atMost:
		return "value<=" + b
	case below:
		return "value<" + b
	case ratioAtLeast:
		return "ratio>=" + b
	}
	return "?"
}

// Line is the machine-readable line:
// bench: NAME value=… anchor=… ratio=… target=… ok=true|false
func (r result) Line() string {
	return fmt.Sprintf("bench: %s value=%s anchor=%s ratio=%s target=%s ok=%t",
		r.Name, num(r.Value), num(r.Anchor), num3(r.Ratio()), r.TargetText(), r.OK())
}

// num formats a value compactly: integers without decimals, others with at most 2.
func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 0):
		return "Inf"
	case v == math.Trunc(v) && math.Abs(v) < 1e12:
		return strconv.FormatInt(int64(v), 10)
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func num3(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return num(v)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// report collects results and the table rows that explain them.
type report struct {
	results []result
	rows    [][3]string // target, measure, value
}

func (rp *report) add(rs ...result) { rp.results = append(rp.results, rs...) }

// note adds a row to the human table.
func (rp *report) note(target, measure, format string, args ...any) {
	rp.rows = append(rp.rows, [3]string{target, measure, fmt.Sprintf(format, args...)})
}

// print writes the bench: lines, then the table.
func (rp *report) print(w io.Writer) {
	for _, r := range rp.results {
		fmt.Fprintln(w, r.Line())
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tcriterion\tvalue\tanchor\tratio\ttarget\tok\tnote")
	for _, r := range rp.results {
		note := r.Detail
		if r.Err != nil {
			note = "ERROR: " + r.Err.Error()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%t\t%s\n", targetLabel(r.Target), r.Name, num(r.Value), num(r.Anchor),
			num3(r.Ratio()), r.TargetText(), r.OK(), note)
	}
	_ = tw.Flush()
	if len(rp.rows) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmeasure\tvalue")
	for _, row := range rp.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", row[0], row[1], row[2])
	}
	_ = tw.Flush()
}

func targetLabel(t int) string {
	if t == 0 {
		return "caps"
	}
	return strconv.Itoa(t)
}

// allOK reports whether every result met its target.
func (rp *report) allOK() bool {
	for _, r := range rp.results {
		if !r.OK() {
			return false
		}
	}
	return true
}

// percentile returns the p-th percentile (0–100) of ds by the nearest-rank method.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mib formats bytes as MiB.
func mib(b int64) float64 { return math.Round(float64(b)/(1<<20)*10) / 10 }

// joinInts formats a list of counts compactly: "200 200 199 …".
func joinInts(vs []int, maxN int) string {
	var b strings.Builder
	for i, v := range vs {
		if i == maxN {
			fmt.Fprintf(&b, " … (%d more)", len(vs)-maxN)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(v))
	}
	return b.String()
}
