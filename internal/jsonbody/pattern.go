package jsonbody

import (
	"regexp"
	"regexp/syntax"
	"unicode/utf8"
)

// matcher checks a string against a pattern. Most patterns in API descriptions are
// anchored runs of character classes — "^[A-Z]{3}-[0-9]{4}$", "^[^@ ]+@[^@ ]+$" — which
// a direct scan checks several times faster than the regexp engine; the others use it.
type matcher interface {
	Match(b []byte) bool
	String() string
}

// compilePattern compiles a pattern: a simple one to a run scanner, else a regexp.
func compilePattern(p string) (matcher, error) {
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, err
	}
	if r := simpleRun(p); r != nil {
		return r, nil
	}
	return re, nil
}

// step is one element of a run: a rune class taken min to max times (max < 0: no bound).
type step struct {
	ranges   []rune // pairs lo, hi, sorted
	min, max int
}

func (s *step) has(r rune) bool {
	for i := 0; i < len(s.ranges); i += 2 {
		if r < s.ranges[i] {
			return false
		}
		if r <= s.ranges[i+1] {
			return true
		}
	}
	return false
}

// run is an anchored pattern made of steps, each of which — when its count may vary —
// takes no rune the next step could start with, so that taking each step greedily decides
// the match without going back.
type run struct {
	steps []step
	text  string
}

func (r *run) String() string { return r.text }

func (r *run) Match(b []byte) bool {
	i := 0
	for k := range r.steps {
		s := &r.steps[k]
		n := 0
		for i < len(b) && (s.max < 0 || n < s.max) {
			c, size := rune(b[i]), 1
			if c >= utf8.RuneSelf {
				c, size = utf8.DecodeRune(b[i:])
			}
			if !s.has(c) {
				break
			}
			i += size
			n++
		}
		if n < s.min {
			return false
		}
	}
	return i == len(b)
}

// simpleRun reads a pattern as a run, or returns nil when it is not one.
func simpleRun(p string) *run {
	re, err := syntax.Parse(p, syntax.Perl)
	if err != nil || re.Op != syntax.OpConcat || len(re.Sub) < 2 {
		return nil
	}
	subs := re.Sub
	if subs[0].Op != syntax.OpBeginText || subs[len(subs)-1].Op != syntax.OpEndText {
		return nil
	}
	var steps []step
	for _, sub := range subs[1 : len(subs)-1] {
		more, ok := stepsOf(sub)
		if !ok {
			return nil
		}
		steps = append(steps, more...)
	}
	// Greedy is exact only when a step whose count varies takes nothing its follower
	// could start with.
	for k := range steps {
		if steps[k].min == steps[k].max {
			continue
		}
		if k+1 < len(steps) && overlap(&steps[k], &steps[k+1]) {
			return nil
		}
		if k+1 < len(steps) && steps[k+1].min == 0 {
			return nil // what follows an optional follower would need looking at too
		}
	}
	return &run{steps: steps, text: p}
}

func stepsOf(re *syntax.Regexp) ([]step, bool) {
	if re.Flags&syntax.FoldCase != 0 {
		return nil, false
	}
	switch re.Op {
	case syntax.OpLiteral:
		out := make([]step, len(re.Rune))
		for i, r := range re.Rune {
			out[i] = step{ranges: []rune{r, r}, min: 1, max: 1}
		}
		return out, true
	case syntax.OpCharClass:
		return []step{{ranges: re.Rune, min: 1, max: 1}}, true
	case syntax.OpAnyCharNotNL:
		return []step{{ranges: []rune{0, '\n' - 1, '\n' + 1, utf8.MaxRune}, min: 1, max: 1}}, true
	case syntax.OpAnyChar:
		return []step{{ranges: []rune{0, utf8.MaxRune}, min: 1, max: 1}}, true
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		if re.Flags&syntax.NonGreedy != 0 {
			return nil, false
		}
		inner, ok := stepsOf(re.Sub[0])
		if !ok || len(inner) != 1 || inner[0].min != 1 || inner[0].max != 1 {
			return nil, false
		}
		s := inner[0]
		switch re.Op {
		case syntax.OpStar:
			s.min, s.max = 0, -1
		case syntax.OpPlus:
			s.min, s.max = 1, -1
		case syntax.OpQuest:
			s.min, s.max = 0, 1
		default:
			s.min, s.max = re.Min, re.Max
		}
		return []step{s}, true
	}
	return nil, false
}

// overlap reports whether two steps' classes share a rune.
func overlap(a, b *step) bool {
	for i := 0; i < len(a.ranges); i += 2 {
		for j := 0; j < len(b.ranges); j += 2 {
			if a.ranges[i] <= b.ranges[j+1] && b.ranges[j] <= a.ranges[i+1] {
				return true
			}
		}
	}
	return false
}
