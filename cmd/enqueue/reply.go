package main

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/voicequeue/voicequeue/internal/queue"
)

// decodeBatchReply decodes the reply to POST /v1/jobs/batch; n, the number of jobs sent, sizes
// the results. The replies the gateway writes take a fast path: a strict reader of exactly
// that shape, without reflection, which costs a fraction of json.Unmarshal for 1,000 results.
// Anything it does not expect (another key, a null, a \u escape, a number that is not a plain
// integer, malformed JSON) goes to json.Unmarshal instead, so the outcome is always the one
// json.Unmarshal gives; a fuzz test holds the two together.
func decodeBatchReply(data []byte, n int, rep *batchReply) error {
	p := replyParser{data: data}
	if p.reply(rep, n) {
		return nil
	}
	*rep = batchReply{}
	return json.Unmarshal(data, rep)
}

// replyParser reads a batch reply; each method reports false at the first thing it does not
// accept, leaving the decision to json.Unmarshal.
type replyParser struct {
	data []byte
	i    int
}

func (p *replyParser) ws() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c, after white space.
func (p *replyParser) byte(c byte) bool {
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

// next reports whether an object or array goes on (',') or ends (end), after white space.
func (p *replyParser) next(end byte) (more, ok bool) {
	p.ws()
	if p.i >= len(p.data) {
		return false, false
	}
	switch p.data[p.i] {
	case ',':
		p.i++
		return true, true
	case end:
		p.i++
		return false, true
	}
	return false, false
}

// object reads a JSON object whose members field reads: field returns the member's index among
// the object's known keys (each may appear at most once) and whether its value was read;
// -1 is an unknown key, which fails the object.
func (p *replyParser) object(keys int, field func(key string) (int, bool)) bool {
	if !p.byte('{') {
		return false
	}
	var seen [8]bool // keys ≤ 8
	for first := true; ; first = false {
		if first && p.byte('}') {
			return true
		}
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		k, ok := field(key)
		if !ok || k < 0 || k >= keys || seen[k] {
			return false
		}
		seen[k] = true
		more, ok := p.next('}')
		if !ok {
			return false
		}
		if !more {
			return true
		}
	}
}

// reply reads {"accepted": N, "rejected": N, "results": [ITEM, …]}, each key at most once, and
// nothing after it but white space.
func (p *replyParser) reply(rep *batchReply, n int) bool {
	ok := p.object(3, func(key string) (k int, ok bool) {
		switch key {
		case "accepted":
			rep.Accepted, ok = p.int()
			return 0, ok
		case "rejected":
			rep.Rejected, ok = p.int()
			return 1, ok
		case "results":
			rep.Results, ok = p.results(n)
			return 2, ok
		}
		return -1, false
	})
	p.ws()
	return ok && p.i == len(p.data)
}

func (p *replyParser) results(n int) ([]queue.BatchItem, bool) {
	if !p.byte('[') {
		return nil, false
	}
	items := make([]queue.BatchItem, 0, n)
	if p.byte(']') {
		return items, true
	}
	for {
		var it queue.BatchItem
		if !p.item(&it) {
			return nil, false
		}
		items = append(items, it)
		more, ok := p.next(']')
		if !ok {
			return nil, false
		}
		if !more {
			return items, true
		}
	}
}

// item reads {"index": N, "id": S, "state": S, "existing": B, "error": S, "field": S}, any of
// them, each at most once.
func (p *replyParser) item(it *queue.BatchItem) bool {
	return p.object(6, func(key string) (k int, ok bool) {
		switch key {
		case "index":
			it.Index, ok = p.int()
			return 0, ok
		case "id":
			it.ID, ok = p.str()
			return 1, ok
		case "state":
			var b []byte
			b, ok = p.bytes()
			it.State = internState(b)
			return 2, ok
		case "existing":
			it.Existing, ok = p.bool()
			return 3, ok
		case "error":
			it.Error, ok = p.str()
			return 4, ok
		case "field":
			it.Field, ok = p.str()
			return 5, ok
		}
		return -1, false
	})
}

// internState returns the states of a fresh job without a copy per item.
func internState(b []byte) string {
	switch string(b) { // no copy to compare
	case "queued":
		return "queued"
	case "scheduled":
		return "scheduled"
	}
	return string(b)
}

// int reads an integer as JSON writes it: an optional minus, then 0 or up to 18 digits not
// starting with 0 (so that it cannot overflow).
func (p *replyParser) int() (int, bool) {
	p.ws()
	i, neg := p.i, false
	if i < len(p.data) && p.data[i] == '-' {
		neg = true
		i++
	}
	start, v := i, 0
	for i < len(p.data) && p.data[i] >= '0' && p.data[i] <= '9' && i-start < 18 {
		v = v*10 + int(p.data[i]-'0')
		i++
	}
	switch {
	case i == start, p.data[start] == '0' && i-start > 1:
		return 0, false
	case i < len(p.data):
		// A fraction, an exponent or a 19th digit: json.Unmarshal decides.
		if c := p.data[i]; c == '.' || c == 'e' || c == 'E' || c >= '0' && c <= '9' {
			return 0, false
		}
	}
	p.i = i
	if neg {
		v = -v
	}
	return v, true
}

func (p *replyParser) bool() (bool, bool) {
	p.ws()
	rest := p.data[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// str reads a string: valid UTF-8 without control characters, and of the escapes only the
// one-letter ones (\" \\ \/ \b \f \n \r \t); a \u escape is left to json.Unmarshal.
func (p *replyParser) str() (string, bool) {
	b, ok := p.bytes()
	return string(b), ok
}

// bytes reads a string as str does; the result may point into the reply.
func (p *replyParser) bytes() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	var buf []byte // the unescaped string, once an escape is met
	for i := start; i < len(p.data); i++ {
		c := p.data[i]
		switch {
		case c == '"':
			seg := p.data[start:i]
			if !utf8.Valid(seg) {
				return nil, false
			}
			p.i = i + 1
			if buf != nil {
				return append(buf, seg...), true
			}
			return seg, true
		case c < 0x20:
			return nil, false
		case c == '\\':
			if i+1 >= len(p.data) {
				return nil, false
			}
			var r byte
			switch p.data[i+1] {
			case '"', '\\', '/':
				r = p.data[i+1]
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			default:
				return nil, false
			}
			seg := p.data[start:i]
			if !utf8.Valid(seg) {
				return nil, false
			}
			buf = append(append(buf, seg...), r)
			i++
			start = i + 1
		}
	}
	return nil, false
}
