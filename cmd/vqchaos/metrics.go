package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// sample is one series of the Prometheus text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// samples are one scrape.
type samples []sample

// parseMetrics reads the Prometheus text exposition format (the subset client_golang writes:
// one series per line, label values in double quotes with \\, \" and \n escapes). Comments and
// lines it cannot read are skipped.
func parseMetrics(r io.Reader) (samples, error) {
	var out samples
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if s, ok := parseSample(line); ok {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

func parseSample(line string) (sample, bool) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return s, false
	}
	s.name = line[:i]
	rest := line[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " ,")
			if rest == "" {
				return s, false
			}
			if rest[0] == '}' {
				rest = rest[1:]
				break
			}
			eq := strings.Index(rest, `="`)
			if eq <= 0 {
				return s, false
			}
			key := rest[:eq]
			rest = rest[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(rest); j++ {
				c := rest[j]
				if c == '\\' && j+1 < len(rest) {
					j++
					switch rest[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(rest[j])
					}
					continue
				}
				if c == '"' {
					rest, closed = rest[j+1:], true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return s, false
			}
			s.labels[key] = val.String()
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 {
		return s, false
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return s, false
	}
	s.value = v
	return s, true
}

// sum adds the values of the series named name whose labels include match.
func (ss samples) sum(name string, match map[string]string) float64 {
	total := 0.0
	for _, s := range ss {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range match {
			if s.labels[k] != v {
				ok = false
				break
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// by sums the series named name by the value of one label.
func (ss samples) by(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		if s.name == name {
			out[s.labels[label]] += s.value
		}
	}
	return out
}

// scrape reads url's metrics.
func scrape(ctx context.Context, client *http.Client, url string) (samples, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("scrape %s: HTTP %d", url, resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// counterBook adds up the counters of processes that come and go: a killed worker's counters die
// with it, so the last scrape of every process (taken just before it is killed) is kept, and the
// totals are the sum over every process that ever ran.
type counterBook struct {
	finished []samples       // last scrape of each process that ended
	live     map[int]samples // latest scrape of each running process, by slot
}

func newCounterBook() *counterBook { return &counterBook{live: map[int]samples{}} }

// update records a running process' latest scrape.
func (b *counterBook) update(slot int, ss samples) { b.live[slot] = ss }

// end closes the process in slot: its latest scrape becomes final.
func (b *counterBook) end(slot int) {
	if ss, ok := b.live[slot]; ok {
		b.finished = append(b.finished, ss)
		delete(b.live, slot)
	}
}

// all returns every process' latest scrape as one list of samples.
func (b *counterBook) all() samples {
	var out samples
	for _, ss := range b.finished {
		out = append(out, ss...)
	}
	slots := make([]int, 0, len(b.live))
	for s := range b.live {
		slots = append(slots, s)
	}
	sort.Ints(slots)
	for _, s := range slots {
		out = append(out, b.live[s]...)
	}
	return out
}

// processes is the number of processes the book has seen.
func (b *counterBook) processes() int { return len(b.finished) + len(b.live) }
