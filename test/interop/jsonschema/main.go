// Command jsonschema runs the JSON-Schema-Test-Suite (its tests/ and remotes/ directories,
// as run.sh fetches them) through each candidate validator of request and response bodies,
// and times a precompiled validation of a 1 KB document. It prints Markdown tables.
//
//	go run . -suite /path/to/json-schema-test-suite
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/xeipuuv/gojsonschema"

	"github.com/tollgate-gw/tollgate/internal/jsonbody"
)

type group struct {
	Description string          `json:"description"`
	Schema      json.RawMessage `json:"schema"`
	Tests       []struct {
		Description string          `json:"description"`
		Data        json.RawMessage `json:"data"`
		Valid       bool            `json:"valid"`
	} `json:"tests"`
}

// validator compiles a schema once and validates documents with it.
type validator interface {
	name() string
	compile(draft string, schema []byte) (func(doc []byte) (bool, error), error)
}

var verbose = flag.String("v", "", "list the failures of the validator of this name")

func main() {
	suite := flag.String("suite", "", "the test suite's directory (holding tests/ and remotes/)")
	tests := flag.String("tests", "", "the directory of the draft*/ test folders (default: SUITE/tests)")
	remotesDir := flag.String("remotes", "", "the remotes/ folder the tests reference (default: SUITE/remotes)")
	noBench := flag.Bool("no-bench", false, "only the suite, no timing")
	flag.Parse()
	remotes := cmp.Or(*remotesDir, filepath.Join(*suite, "remotes"))
	vs := []validator{tollgate{}, santhosh{remotes}, gojs{remotes}, kin{}}
	drafts, _ := filepath.Glob(filepath.Join(cmp.Or(*tests, filepath.Join(*suite, "tests")), "draft*"))
	sort.Strings(drafts)
	fmt.Println("| validator | draft | tests | passed | rate | schemas not compiled | wrong answers of compiled schemas |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, v := range vs {
		for _, d := range drafts {
			draft := filepath.Base(d)
			total, passed, uncompiled, wrong := run(v, draft, d)
			fmt.Printf("| %s | %s | %d | %d | %.1f%% | %d | %d |\n", v.name(), draft, total, passed, 100*float64(passed)/float64(total), uncompiled, wrong)
		}
	}
	if !*noBench {
		fmt.Println()
		bench(vs)
	}
}

// run counts the suite's required tests (not optional/) of one draft that v gets right; a
// schema it cannot compile fails all its tests. wrong counts the tests of compiled schemas
// it gets wrong: what a validator that refuses what it cannot check must keep at zero.
func run(v validator, draft, dir string) (total, passed, uncompiled, wrong int) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			panic(err)
		}
		var groups []group
		if err := json.Unmarshal(b, &groups); err != nil {
			panic(fmt.Sprintf("%s: %v", f, err))
		}
		for _, g := range groups {
			total += len(g.Tests)
			check, err := safeCompile(v, draft, g.Schema)
			if err != nil {
				uncompiled++
				if *verbose == v.name() {
					fmt.Fprintf(os.Stderr, "%s %s %q: not compiled: %v\n", draft, filepath.Base(f), g.Description, err)
				}
				continue
			}
			for _, tc := range g.Tests {
				ok, err := safeCheck(check, tc.Data)
				if err == nil && ok == tc.Valid {
					passed++
					continue
				}
				wrong++
				if *verbose == v.name() {
					fmt.Fprintf(os.Stderr, "%s %s %q / %q: want valid=%v, got %v %v\n", draft, filepath.Base(f), g.Description, tc.Description, tc.Valid, ok, err)
				}
			}
		}
	}
	return total, passed, uncompiled, wrong
}

func safeCompile(v validator, draft string, s []byte) (f func([]byte) (bool, error), err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return v.compile(draft, s)
}

func safeCheck(f func([]byte) (bool, error), doc []byte) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f(doc)
}

// A 1 KB order, and its schema: what a request body of an API typically is.
const orderSchema = `{"type":"object","required":["id","customer","items"],"additionalProperties":false,"properties":{
 "id":{"type":"string","pattern":"^[A-Z]{2}-[0-9]{6}$"},"customer":{"type":"object","required":["name","email"],"properties":{"name":{"type":"string","minLength":1,"maxLength":100},"email":{"type":"string","maxLength":200}}},
 "items":{"type":"array","minItems":1,"maxItems":50,"items":{"type":"object","required":["sku","quantity","price"],"properties":{"sku":{"type":"string"},"quantity":{"type":"integer","minimum":1,"maximum":1000},"price":{"type":"number","minimum":0},"note":{"type":"string","maxLength":200}}}},
 "shipping":{"type":"string","enum":["standard","express","pickup"]},"gift":{"type":"boolean"}}}`

func orderDoc() []byte {
	var b bytes.Buffer
	b.WriteString(`{"id":"AB-123456","customer":{"name":"Ada Lovelace","email":"ada@example.com"},"shipping":"express","gift":false,"items":[`)
	for i := 0; b.Len() < 950; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%04d","quantity":%d,"price":%d.99,"note":"fragile"}`, i, i+1, i+3)
	}
	b.WriteString("]}")
	return b.Bytes()
}

func bench(vs []validator) {
	doc := orderDoc()
	fmt.Printf("precompiled validation of a %d-byte document (JSON decoding included)\n\n", len(doc))
	fmt.Println("| validator | ns/op | allocs/op | B/op | valid |")
	fmt.Println("|---|---|---|---|---|")
	for _, v := range vs {
		check, err := v.compile("draft7", []byte(orderSchema))
		if err != nil {
			fmt.Printf("| %s | does not compile: %v | | | |\n", v.name(), err)
			continue
		}
		ok, err := check(doc)
		r := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				check(doc)
			}
		})
		fmt.Printf("| %s | %d | %d | %d | %v %v |\n", v.name(), r.NsPerOp(), r.AllocsPerOp(), r.AllocedBytesPerOp(), ok, err)
	}
}

// santhosh-tekuri/jsonschema v6: drafts 4 to 2020-12, compiled once.
type santhosh struct{ remotes string }

func (santhosh) name() string { return "santhosh-tekuri/jsonschema v6.0.3" }

func (s santhosh) compile(draft string, schema []byte) (func([]byte) (bool, error), error) {
	c := jsonschema.NewCompiler()
	c.UseLoader(remoteLoader{s.remotes})
	c.DefaultDraft(map[string]*jsonschema.Draft{"draft4": jsonschema.Draft4, "draft6": jsonschema.Draft6, "draft7": jsonschema.Draft7,
		"draft2019-09": jsonschema.Draft2019, "draft2020-12": jsonschema.Draft2020}[draft])
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, err
	}
	if err := c.AddResource("schema.json", doc); err != nil {
		return nil, err
	}
	sch, err := c.Compile("schema.json")
	if err != nil {
		return nil, err
	}
	return func(d []byte) (bool, error) {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(d))
		if err != nil {
			return false, err
		}
		return sch.Validate(v) == nil, nil
	}, nil
}

// remoteLoader serves the suite's http://localhost:1234/ references from remotes/.
type remoteLoader struct{ dir string }

func (l remoteLoader) Load(url string) (any, error) {
	rest, ok := strings.CutPrefix(url, "http://localhost:1234/")
	if !ok {
		return nil, fmt.Errorf("no remote %s", url)
	}
	f, err := os.Open(filepath.Join(l.dir, rest))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

// xeipuuv/gojsonschema: drafts 4, 6 and 7.
type gojs struct{ remotes string }

func (gojs) name() string { return "xeipuuv/gojsonschema v1.2.0" }

func (g gojs) compile(draft string, schema []byte) (func([]byte) (bool, error), error) {
	sl := gojsonschema.NewSchemaLoader()
	d, ok := map[string]gojsonschema.Draft{"draft4": gojsonschema.Draft4, "draft6": gojsonschema.Draft6, "draft7": gojsonschema.Draft7}[draft]
	if !ok {
		// It knows no later draft, and a 2019-09 recursive reference overflows its stack
		// (a fatal error, not a panic): not tried.
		return nil, fmt.Errorf("gojsonschema does not support %s", draft)
	}
	sl.Draft = d
	sl.Validate = true
	files, _ := filepath.Glob(filepath.Join(g.remotes, "*.json"))
	sub, _ := filepath.Glob(filepath.Join(g.remotes, "*", "*.json"))
	for _, f := range append(files, sub...) {
		rel, _ := filepath.Rel(g.remotes, f)
		b, _ := os.ReadFile(f)
		_ = sl.AddSchema("http://localhost:1234/"+filepath.ToSlash(rel), gojsonschema.NewBytesLoader(b))
	}
	sch, err := sl.Compile(gojsonschema.NewBytesLoader(schema))
	if err != nil {
		return nil, err
	}
	return func(d []byte) (bool, error) {
		r, err := sch.Validate(gojsonschema.NewBytesLoader(d))
		if err != nil {
			return false, err
		}
		return r.Valid(), nil
	}, nil
}

// kin-openapi's OpenAPI 3.0 schema object (what Tollgate parses definitions with): a
// draft-4 subset with OpenAPI's own keywords, not a JSON Schema validator as such.
type kin struct{}

func (kin) name() string { return "kin-openapi openapi3.Schema" }

func (kin) compile(_ string, schema []byte) (func([]byte) (bool, error), error) {
	var s openapi3.Schema
	if err := json.Unmarshal(schema, &s); err != nil {
		return nil, err
	}
	if err := s.Validate(context.Background()); err != nil {
		return nil, err
	}
	return func(d []byte) (bool, error) {
		var v any
		if err := json.Unmarshal(d, &v); err != nil {
			return false, err
		}
		return s.VisitJSON(v) == nil, nil
	}, nil
}

// Tollgate's own: OpenAPI schemas compiled for one pass over the body's bytes
// (internal/jsonbody), read here through kin-openapi's schema object as definitions are.
type tollgate struct{}

func (tollgate) name() string { return "tollgate internal/jsonbody" }

func (tollgate) compile(_ string, schema []byte) (func([]byte) (bool, error), error) {
	var s openapi3.Schema
	if err := json.Unmarshal(schema, &s); err != nil {
		return nil, err
	}
	v, err := jsonbody.Compile(&s)
	if err != nil {
		return nil, err
	}
	return func(d []byte) (bool, error) { return v.Valid(d), nil }, nil
}
