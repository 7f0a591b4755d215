package main

import (
	"fmt"
	"strings"
)

// The run adds up the workers' counters from their /metrics pages: here the circuit breaker's
// transitions, as the report prints them.
func Example_parseMetrics() {
	page := `# TYPE voicequeue_breaker_transitions_total counter
voicequeue_breaker_transitions_total{to="closed"} 1
voicequeue_breaker_transitions_total{to="half_open"} 2
voicequeue_breaker_transitions_total{to="open"} 3
`
	ss, err := parseMetrics(strings.NewReader(page))
	if err != nil {
		panic(err)
	}
	fmt.Println(formatFloats(ss.by("voicequeue_breaker_transitions_total", "to")))
	// Output: open 3, half_open 2, closed 1
}
