package jsonbody

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Violation is one way a body breaks its schema: where (an RFC 6901 JSON pointer into the
// body) and why. It never holds the body's values.
type Violation struct {
	Pointer string
	Reason  string
}

func (v Violation) String() string { return v.Pointer + ": " + v.Reason }

// MaxViolations is how many violations one validation reports at most.
const MaxViolations = 10

// maxDepth bounds nesting, so that a hostile body cannot exhaust the stack.
const maxDepth = 512

// Validate checks body; nil means it is valid. A body that is not JSON is one violation at
// the root.
func (v *Validator) Validate(body []byte) []Violation {
	s := state{b: body}
	s.value(v.root)
	if !s.broken {
		s.space()
		if s.i != len(s.b) {
			s.fail("the body is not one JSON value (more follows at byte %d)", s.i)
		}
	}
	return s.errs
}

// Valid is Validate without the violations' detail.
func (v *Validator) Valid(body []byte) bool {
	s := state{b: body, quiet: true}
	s.value(v.root)
	if !s.broken {
		s.space()
		if s.i != len(s.b) {
			s.count++
		}
	}
	return s.count == 0
}

type seg struct {
	key   []byte // a property name as written (escapes included), or
	index int    // an array index (key nil)
}

type state struct {
	b      []byte
	i      int
	path   []seg
	errs   []Violation
	count  int  // violations found (also in quiet mode)
	quiet  bool // count only: the result of an anyOf/oneOf/not branch
	broken bool // the body is not JSON: stop
	depth  int
	buf    []byte // a decoded string with escapes
}

func (s *state) fail(format string, args ...any) {
	s.count++
	if s.quiet || len(s.errs) >= MaxViolations {
		return
	}
	s.errs = append(s.errs, Violation{Pointer: s.pointer(), Reason: fmt.Sprintf(format, args...)})
}

func (s *state) syntax(what string) {
	s.broken = true
	s.fail("the body is not JSON: %s at byte %d", what, s.i)
}

func (s *state) pointer() string {
	var b strings.Builder
	for _, p := range s.path {
		b.WriteByte('/')
		if p.key == nil {
			b.WriteString(strconv.Itoa(p.index))
			continue
		}
		k := string(p.key)
		if strings.Contains(k, `\`) {
			var d string
			if json.Unmarshal([]byte(`"`+k+`"`), &d) == nil {
				k = d
			}
		}
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(k))
	}
	return b.String()
}

func (s *state) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value reads one value at s.i and checks it against n.
func (s *state) value(n *node) {
	s.space()
	if s.i >= len(s.b) {
		s.syntax("unexpected end")
		return
	}
	if n.never {
		s.value(anything)
		if !s.broken {
			s.fail("no value is allowed here (the schema is false)")
		}
		return
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '{':
		s.object(n)
	case c == '[':
		s.array(n)
	case c == '"':
		s.stringValue(n)
	case c == 't':
		s.literal("true", kBool, n)
	case c == 'f':
		s.literal("false", kBool, n)
	case c == 'n':
		s.literal("null", kNull, n)
	case c == '-' || c >= '0' && c <= '9':
		s.number(n)
	default:
		s.syntax(fmt.Sprintf("unexpected %q", c))
	}
	if s.broken {
		return
	}
	raw := s.b[start:s.i]
	if len(n.enum) > 0 {
		s.checkEnum(n, raw)
	}
	if len(n.allOf)+len(n.anyOf)+len(n.oneOf) > 0 || n.not != nil {
		s.combinators(n, raw)
	}
}

func (s *state) wrongType(n *node, got string) {
	s.fail("%s, where %s is wanted", got, typeNames(n.types))
}

func typeNames(k kind) string {
	var names []string
	for _, t := range []struct {
		k    kind
		name string
	}{{kNull, "null"}, {kBool, "a boolean"}, {kNumber, "a number"}, {kString, "a string"}, {kArray, "an array"}, {kObject, "an object"}} {
		if k&t.k != 0 {
			names = append(names, t.name)
		}
	}
	if k&kNumber == 0 && k&kInteger != 0 {
		names = append(names, "an integer")
	}
	return strings.Join(names, " or ")
}

func (s *state) literal(word string, k kind, n *node) {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		s.syntax("a misspelt literal")
		return
	}
	s.i += len(word)
	if n.types&k == 0 {
		s.wrongType(n, word)
	}
}

func (s *state) number(n *node) {
	start := s.i
	if !s.scanNumber() {
		s.syntax("a malformed number")
		return
	}
	if n.types&(kNumber|kInteger) == 0 {
		s.wrongType(n, "a number")
		return
	}
	if n.types&kNumber != 0 && !n.hasMin && !n.hasMax && n.multipleOf == 0 {
		return // any number will do
	}
	f, ok := smallInteger(s.b[start:s.i])
	if !ok {
		var err error
		f, err = strconv.ParseFloat(string(s.b[start:s.i]), 64)
		if err != nil && !math.IsInf(f, 0) {
			s.syntax("a malformed number")
			return
		}
	}
	if n.types&kNumber == 0 && f != math.Trunc(f) {
		s.wrongType(n, "a number with a fraction")
		return
	}
	s.checkNumber(n, f)
}

// IsNumber reports whether b is one number as JSON writes it (RFC 8259).
func IsNumber(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	s := state{b: b}
	return s.scanNumber() && s.i == len(b)
}

// smallInteger reads a number written as an integer of at most 15 digits (exact in a
// float64) without strconv; ok is false for any other.
func smallInteger(b []byte) (float64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return float64(v), true
}

// scanNumber reads RFC 8259's number: -? int frac? exp?, and reports whether it was one.
func (s *state) scanNumber() bool {
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	s.digits()
	if s.i == digits || s.b[digits] == '0' && s.i-digits > 1 {
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

// digits reads decimal digits and says how many.
func (s *state) digits() int {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}

func (s *state) checkNumber(n *node, f float64) {
	switch {
	case n.hasMin && n.exclMin && f <= n.min:
		s.fail("%g is not greater than %g", f, n.min)
	case n.hasMin && f < n.min:
		s.fail("%g is less than the minimum %g", f, n.min)
	}
	switch {
	case n.hasMax && n.exclMax && f >= n.max:
		s.fail("%g is not less than %g", f, n.max)
	case n.hasMax && f > n.max:
		s.fail("%g is more than the maximum %g", f, n.max)
	}
	if m := n.multipleOf; m > 0 {
		q := f / m
		if math.IsInf(q, 0) || math.Abs(q-math.Round(q)) > 1e-9*math.Max(1, math.Abs(q)) {
			s.fail("%g is not a multiple of %g", f, m)
		}
	}
}

// escape checks the escape at s.i (the backslash) and moves past it.
func (s *state) escape() bool {
	if s.i+1 >= len(s.b) {
		return false
	}
	switch s.b[s.i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i += 2
		return true
	case 'u':
		if s.i+6 > len(s.b) {
			return false
		}
		for _, h := range s.b[s.i+2 : s.i+6] {
			if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
				return false
			}
		}
		s.i += 6
		return true
	}
	return false
}

// str reads a string at s.i (the opening quote) and returns its content, decoded when it
// has escapes (into s.buf, valid until the next call).
func (s *state) str() ([]byte, bool) {
	s.i++
	start, escaped, ascii := s.i, false, true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !escaped {
				if !ascii && !utf8.Valid(raw) {
					s.syntax("a string that is not UTF-8")
					return nil, false
				}
				return raw, true
			}
			if !utf8.Valid(raw) {
				s.syntax("a string that is not UTF-8")
				return nil, false
			}
			var d string
			if json.Unmarshal(s.b[start-1:s.i], &d) != nil {
				s.syntax("a malformed string escape")
				return nil, false
			}
			s.buf = append(s.buf[:0], d...)
			return s.buf, true
		case c == '\\':
			// RFC 8259 §7: \" \\ \/ \b \f \n \r \t and \uXXXX, nothing else.
			escaped = true
			if !s.escape() {
				s.syntax("a malformed string escape")
				return nil, false
			}
		case c < 0x20:
			s.syntax("a control character in a string")
			return nil, false
		default:
			ascii = ascii && c < utf8.RuneSelf
			s.i++
		}
	}
	s.syntax("an unterminated string")
	return nil, false
}

func (s *state) stringValue(n *node) {
	v, ok := s.str()
	if !ok {
		return
	}
	if n.types&kString == 0 {
		s.wrongType(n, "a string")
		return
	}
	if n.minLen > 0 || n.maxLen >= 0 {
		l := utf8.RuneCount(v)
		if l < n.minLen {
			s.fail("a string of %d characters, shorter than %d", l, n.minLen)
		}
		if n.maxLen >= 0 && l > n.maxLen {
			s.fail("a string of %d characters, longer than %d", l, n.maxLen)
		}
	}
	if n.pattern != nil && !n.pattern.Match(v) {
		s.fail("does not match the pattern %s", n.pattern)
	}
	if n.format != nil && !n.format(v) {
		s.fail("not a valid %s", n.formatName)
	}
}

func (s *state) array(n *node) {
	if s.depth++; s.depth > maxDepth {
		s.syntax("nesting deeper than 512")
		return
	}
	defer func() { s.depth-- }()
	s.i++
	if n.types&kArray == 0 {
		s.wrongType(n, "an array")
	}
	items := n.items
	if items == nil || n.types&kArray == 0 {
		items = anything
	}
	var seen [][]byte
	count := 0
	s.space()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
	} else {
		for {
			s.path = append(s.path, seg{index: count})
			start := s.i
			s.value(items)
			s.path = s.path[:len(s.path)-1]
			if s.broken {
				return
			}
			if n.unique && n.types&kArray != 0 {
				c := canonicalSpan(s.b[start:s.i])
				for _, o := range seen {
					if bytes.Equal(o, c) {
						s.fail("item %d repeats an earlier item (uniqueItems)", count)
						break
					}
				}
				seen = append(seen, c)
			}
			count++
			s.space()
			if s.i >= len(s.b) {
				s.syntax("an unterminated array")
				return
			}
			if s.b[s.i] == ']' {
				s.i++
				break
			}
			if s.b[s.i] != ',' {
				s.syntax("a missing comma in an array")
				return
			}
			s.i++
		}
	}
	if n.types&kArray == 0 {
		return
	}
	if count < n.minItems {
		s.fail("%d items, fewer than %d", count, n.minItems)
	}
	if n.maxItems >= 0 && count > n.maxItems {
		s.fail("%d items, more than %d", count, n.maxItems)
	}
}

// anything is the schema {}: every value passes; the scanner still checks it is JSON.
var anything = &node{types: kAny, maxLen: -1, maxItems: -1, maxProps: -1}

func (s *state) object(n *node) {
	if s.depth++; s.depth > maxDepth {
		s.syntax("nesting deeper than 512")
		return
	}
	defer func() { s.depth-- }()
	s.i++
	isObject := n.types&kObject != 0
	if !isObject {
		s.wrongType(n, "an object")
	}
	seen := required{}
	if isObject && n.required > 64 {
		seen.more = make([]bool, n.required)
	}
	count := 0
	s.space()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
	} else {
		for {
			if !s.member(n, isObject, &seen) {
				return
			}
			count++
			s.space()
			if s.i >= len(s.b) {
				s.syntax("an unterminated object")
				return
			}
			if s.b[s.i] == '}' {
				s.i++
				break
			}
			if s.b[s.i] != ',' {
				s.syntax("a missing comma in an object")
				return
			}
			s.i++
		}
	}
	if isObject {
		s.objectCounts(n, count, seen)
	}
}

// required is the set of an object's required properties seen so far: bits of a word, or
// a slice past 64 of them.
type required struct {
	bits uint64
	more []bool
}

func (r *required) set(bit int) {
	if r.more != nil {
		r.more[bit] = true
		return
	}
	r.bits |= 1 << bit
}

func (r required) has(bit int) bool {
	if r.more != nil {
		return r.more[bit]
	}
	return r.bits&(1<<bit) != 0
}

func (r required) all(n int) bool { return r.more == nil && r.bits == 1<<n-1 }

// member reads one "name": value of an object and checks the value against the schema the
// name selects. It reports false when the body is not JSON.
func (s *state) member(n *node, isObject bool, seen *required) bool {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		s.syntax("a property name that is not a string")
		return false
	}
	keyStart := s.i + 1
	key, ok := s.str()
	if !ok {
		return false
	}
	rawKey := s.b[keyStart : s.i-1]
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != ':' {
		s.syntax("a missing colon after a property name")
		return false
	}
	s.i++
	sub := anything
	s.path = append(s.path, seg{key: rawKey})
	if isObject {
		switch p := n.props[string(key)]; {
		case p != nil:
			sub = p.n
			if p.required {
				seen.set(p.bit)
			}
		case n.additional != nil:
			sub = n.additional
		case n.noAdditional:
			s.fail("a property the schema does not allow (additionalProperties: false)")
		}
	}
	s.value(sub)
	s.path = s.path[:len(s.path)-1]
	return !s.broken
}

// objectCounts checks what is known once an object is read: its required properties and
// its size.
func (s *state) objectCounts(n *node, count int, seen required) {
	if n.required > 0 && !seen.all(n.required) {
		s.missing(n, seen)
	}
	if count < n.minProps {
		s.fail("%d properties, fewer than %d", count, n.minProps)
	}
	if n.maxProps >= 0 && count > n.maxProps {
		s.fail("%d properties, more than %d", count, n.maxProps)
	}
}

// missing reports the required properties an object lacks, in name order.
func (s *state) missing(n *node, seen required) {
	var names []string
	for name, p := range n.props {
		if p.required && !seen.has(p.bit) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	sort.Strings(names)
	s.fail("required properties missing: %s", strings.Join(names, ", "))
}

func (s *state) checkEnum(n *node, raw []byte) {
	if n.enumStrings != nil && len(raw) > 0 && raw[0] == '"' {
		if bytes.IndexByte(raw, '\\') < 0 {
			if _, ok := n.enumStrings[string(raw[1:len(raw)-1])]; ok {
				return
			}
			s.fail("not one of the values the schema lists (enum)")
			return
		}
	}
	c := canonicalSpan(raw)
	for _, e := range n.enum {
		if bytes.Equal(e, c) {
			return
		}
	}
	s.fail("not one of the values the schema lists (enum)")
}

// combinators checks a value's span against allOf (every one), anyOf (at least one), oneOf
// (exactly one) and not (none).
func (s *state) combinators(n *node, raw []byte) {
	for _, sub := range n.allOf {
		s.sub(sub, raw, false)
	}
	if len(n.anyOf) > 0 {
		ok := false
		for _, sub := range n.anyOf {
			if s.sub(sub, raw, true) {
				ok = true
				break
			}
		}
		if !ok {
			s.fail("matches none of the anyOf schemas")
		}
	}
	if len(n.oneOf) > 0 {
		matched := 0
		for _, sub := range n.oneOf {
			if s.sub(sub, raw, true) {
				matched++
			}
		}
		if matched != 1 {
			s.fail("matches %d of the oneOf schemas, not exactly one", matched)
		}
	}
	if n.not != nil && s.sub(n.not, raw, true) {
		s.fail("matches the schema under not")
	}
}

// sub validates raw against sub; quiet only counts. It reports whether raw is valid.
func (s *state) sub(sub *node, raw []byte, quiet bool) bool {
	t := state{b: raw, path: s.path, quiet: quiet || s.quiet, depth: s.depth}
	t.value(sub)
	if !t.quiet {
		for _, v := range t.errs {
			if len(s.errs) < MaxViolations {
				s.errs = append(s.errs, v)
			}
		}
	}
	s.count += t.count * boolInt(!quiet)
	return t.count == 0
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// canonicalSpan is a JSON value's canonical form (as canonical makes for enums).
func canonicalSpan(raw []byte) []byte {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(&v) != nil {
		return raw
	}
	b, err := canonical(v)
	if err != nil {
		return raw
	}
	return b
}
