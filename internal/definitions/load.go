package definitions

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/apimodel/openapi"
	"github.com/tollgate-gw/tollgate/internal/store"
)

// Definition is one API or throttling policy read from a file, valid.
type Definition struct {
	File   string        // the file, or "file (document N)"
	API    *apimodel.API // an API, or
	Policy *Policy       // a throttling policy, or
	Tests  bool          // decision tests (kind: DecisionTests, for `tollgate test`; never stored)
	Data   []byte        // what is stored: the document (a WSO2 policy in Tollgate's form)
}

// TestsKind is the kind of a document of decision tests: it may sit beside the definitions
// it tests, and is read by `tollgate test` only.
const TestsKind = "DecisionTests"

// Policy is a throttling policy as loading sees it: its name, and the document to store.
type Policy struct {
	Name string
	Data []byte
}

// PolicyReader reads throttling policy documents; policies/ratelimit.Reader is one. (The
// policy model lives with the engine that enforces it.)
type PolicyReader interface {
	// IsPolicy says whether data is a Tollgate policy; Parse reads one.
	IsPolicy(data []byte) bool
	Parse(data []byte) (Policy, error)
	// IsWSO2 says whether data is WSO2's policies file; ParseWSO2 reads its policies, in
	// Tollgate's form, with warnings for what is read differently.
	IsWSO2(data []byte) bool
	ParseWSO2(data []byte) ([]Policy, []string, error)
}

// Report is what loading found wrong: problems refuse the files, warnings do not. Each
// line is "file: JSON path: reason".
type Report struct {
	Problems []string
	Warnings []string
}

// OK says whether nothing refuses the files.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Load reads and validates every document of every file: an OpenAPI or Swagger definition,
// a throttling policy, or WSO2's policies file; a second definition of one API or policy is
// a problem. The good definitions are returned either way (validate reports them); store
// them only when the report is OK.
//
// A path is a file, "-" (standard input), a directory (its YAML and JSON files,
// recursively) or an http(s) URL.
func Load(paths []string, policies PolicyReader) ([]Definition, Report) {
	return LoadFrom(paths, os.Stdin, policies)
}

// LoadWith is Load under the gateway's validation defaults (tollgate.yaml's validation).
func LoadWith(paths []string, policies PolicyReader, def apimodel.ValidationDefaults) ([]Definition, Report) {
	return loadFrom(paths, os.Stdin, policies, def)
}

// LoadFrom is Load with "-" reading stdin.
func LoadFrom(paths []string, stdin io.Reader, policies PolicyReader) ([]Definition, Report) {
	return loadFrom(paths, stdin, policies, apimodel.ValidationDefaults{})
}

func loadFrom(paths []string, stdin io.Reader, policies PolicyReader, def apimodel.ValidationDefaults) ([]Definition, Report) {
	l := loader{policies: policies, seen: map[string]string{}, validation: def}
	for _, path := range paths {
		srcs, err := read(path, stdin)
		if err != nil {
			l.problem("%s: $: %v", path, err)
			continue
		}
		for _, src := range srcs {
			for _, doc := range Split(src.name, src.data) {
				l.document(src, doc)
			}
		}
	}
	if n := l.stored(); n > store.MaxTxnOps {
		l.problem("%s: $: %d definitions in one apply; etcd takes at most %d writes in a transaction by default (--max-txn-ops): apply them in parts", strings.Join(paths, ", "), n, store.MaxTxnOps)
	}
	return l.defs, l.report
}

// stored counts the definitions an apply would store.
func (l *loader) stored() int {
	n := 0
	for _, d := range l.defs {
		if d.API != nil || d.Policy != nil {
			n++
		}
	}
	return n
}

type loader struct {
	policies PolicyReader
	seen     map[string]string // "policy NAME" or API id → where it was defined
	defs     []Definition
	report   Report
	// validation is the gateway's default the definitions are read under.
	validation apimodel.ValidationDefaults
}

func (l *loader) problem(format string, args ...any) {
	l.report.Problems = append(l.report.Problems, fmt.Sprintf(format, args...))
}

// claim records where a name was defined; a second definition is a problem.
func (l *loader) claim(name, at, path string) bool {
	if prev, dup := l.seen[name]; dup {
		l.problem("%s: %s: %s is also defined in %s", at, path, name, prev)
		return false
	}
	l.seen[name] = at
	return true
}

func (l *loader) document(src source, doc Document) {
	d, err := openapi.Decode(doc.Data)
	if err != nil {
		l.problem("%s: $: %v", doc.Name, err)
		return
	}
	switch {
	case d.Kind() == TestsKind:
		l.defs = append(l.defs, Definition{File: doc.Name, Tests: true, Data: doc.Data})
	case !d.IsAPI() && l.policies.IsWSO2(doc.Data):
		pols, warnings, err := l.policies.ParseWSO2(doc.Data)
		if err != nil {
			l.problem("%s: %v", doc.Name, err)
			return
		}
		for _, w := range warnings {
			l.report.Warnings = append(l.report.Warnings, doc.Name+": "+w)
		}
		for _, pol := range pols {
			if l.claim("policy "+pol.Name, doc.Name, "$") {
				l.defs = append(l.defs, Definition{File: doc.Name, Policy: &pol, Data: pol.Data})
			}
		}
	case !d.IsAPI() && l.policies.IsPolicy(doc.Data):
		pol, err := l.policies.Parse(doc.Data)
		if err != nil {
			l.problem("%s: %v", doc.Name, err)
			return
		}
		if l.claim("policy "+pol.Name, doc.Name, "$.name") {
			l.defs = append(l.defs, Definition{File: doc.Name, Policy: &pol, Data: doc.Data})
		}
	default:
		res, err := openapi.ParseDocument(doc.Name, d, openapi.Options{Location: src.location, Open: opener(src), Validation: l.validation})
		if err != nil {
			l.problem("%s", err.Error())
			return
		}
		for _, w := range res.Warnings {
			l.report.Warnings = append(l.report.Warnings, w.String())
		}
		data := doc.Data
		if res.Bundled != nil {
			// What is stored is the document with its references bundled in: the gateway
			// never reads files.
			data = res.Bundled
			if len(data) > MaxDocumentBytes {
				l.problem("%s: $: with the files it refers to bundled in, the definition is %d bytes, more than the %d MiB a definition may be", doc.Name, len(data), MaxDocumentBytes>>20)
				return
			}
		}
		if l.claim("API "+res.API.ID(), doc.Name, "$.info") {
			l.defs = append(l.defs, Definition{File: doc.Name, API: res.API, Data: data})
		}
	}
}
