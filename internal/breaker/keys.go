package breaker

// Every Redis key this package uses is built here. For a breaker named <name>:
//
//	voicequeue:breaker:{<name>}:open   string: the cool-down in ms; PX = the cool-down. Present = open:
//	                                   nobody dials.
//	voicequeue:breaker:{<name>}:trip   string: the last cool-down in ms; set at every trip, deleted by a
//	                                   successful probe. Present without :open = half-open. Its PX is
//	                                   the cool-down plus forgetAfter, so an abandoned breaker closes.
//	voicequeue:breaker:{<name>}:probe  string: the token of the instance holding the half-open probe;
//	                                   SET NX PX = the cool-down: one probe per cool-down window.
//
// The three keys share the hash tag {<name>}, so each script, which touches all three, runs in
// one Redis Cluster slot.
type keys struct{ open, trip, probe string }

func newKeys(name string) keys {
	base := "voicequeue:breaker:{" + name + "}:"
	return keys{open: base + "open", trip: base + "trip", probe: base + "probe"}
}

func (k keys) all() []string { return []string{k.open, k.trip, k.probe} }
