package jsonbody

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

var patterns = []struct {
	p   string
	run bool // scanned directly, not by the regexp engine
}{
	{`^[A-Z]{3}-[0-9]{4}$`, true},
	{`^[^@ ]+@[^@ ]+$`, true},
	{`^97[89][0-9]{10}$`, true},
	{`^ord-[0-9]{8}$`, true},
	{`^[0-9a-f]+$`, true},
	{`^[a-z]*$`, true},
	{`^\d{3}\.\d{2}$`, true},
	{`^.{2,5}$`, true},
	{`^é[a-zé]{1,3}ü$`, true},
	{`^$`, true},
	{`^[a-z]+[a-z0-9]*$`, false}, // overlapping classes: greedy would be wrong
	{`^a?b?c$`, false},           // an optional step after a varying one
	{`[0-9]{3}`, false},          // not anchored: "contains"
	{`^(ab)+$`, false},           // a group
	{`^(?i)abc$`, false},         // case folding
	{`^a|b$`, false},             // alternation
	{`^[a-z]{2,}?x$`, false},     // non-greedy
	{`^[A-Z][a-z]+ [A-Z][a-z]+$`, true},
}

// Every pattern answers as Go's regexp does, for strings made of the runes it cares about.
func TestRunsMatchAsRegexp(t *testing.T) {
	alphabet := []rune("aAbBzZ09-@ .xéü\n日")
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range patterns {
		m, err := compilePattern(c.p)
		if err != nil {
			t.Fatal(err)
		}
		if _, isRun := m.(*run); isRun != c.run {
			t.Errorf("%s: run %v, want %v", c.p, isRun, c.run)
		}
		re := regexp.MustCompile(c.p)
		inputs := []string{"", "ABC-1234", "ABC-12345", "a@b", "a@@b", "9781234567890", "ord-12345678", "ff00", "123.45", "éabü", "Ada Lovelace"}
		for range 20000 {
			n := rng.IntN(14)
			b := make([]rune, n)
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
			inputs = append(inputs, string(b))
		}
		for _, in := range inputs {
			if got, want := m.Match([]byte(in)), re.MatchString(in); got != want {
				t.Fatalf("%s on %q: %v, regexp says %v", c.p, in, got, want)
			}
		}
		if m.String() != c.p {
			t.Errorf("%s prints as %s", c.p, m)
		}
	}
}

func FuzzRunsMatchAsRegexp(f *testing.F) {
	f.Add(`^[A-Z]{3}-[0-9]{4}$`, "ABC-1234")
	f.Add(`^[^@ ]+@[^@ ]+$`, "a@b")
	f.Fuzz(func(t *testing.T, p, in string) {
		re, err := regexp.Compile(p)
		if err != nil {
			return
		}
		m, err := compilePattern(p)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := m.Match([]byte(in)), re.MatchString(in); got != want {
			t.Fatalf("%q on %q: %v, regexp says %v", p, in, got, want)
		}
	})
}

func BenchmarkPatternRun(b *testing.B) {
	m, _ := compilePattern(`^[A-Z]{3}-[0-9]{4}$`)
	re := regexp.MustCompile(`^[A-Z]{3}-[0-9]{4}$`)
	in := []byte("ABC-1234")
	b.Run("run", func(b *testing.B) {
		for b.Loop() {
			m.Match(in)
		}
	})
	b.Run("regexp", func(b *testing.B) {
		for b.Loop() {
			re.Match(in)
		}
	})
}
