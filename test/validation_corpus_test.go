package test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/definitions"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

// Validation on real public descriptions nobody here wrote: every operation of every
// corpus document compiled with request and response validation on (a gateway default, so
// what cannot be compiled is a warning, never a refusal), and each request-body example the
// document gives checked against the compiled schema — and, as an independent oracle, by
// kin-openapi's own schema validator on the same document: real documents' examples are
// often wrong (an id written as a number where the schema says string), so what is asserted
// is that the two validators agree.
func TestValidationOfRealPublicDescriptions(t *testing.T) {
	def := apimodel.ValidationDefaults{Request: true, Response: apimodel.ResponseEnforce}
	var examples, valid, ops, compiled, compared, disagreements int
	for _, doc := range corpusDocs(t) {
		start := time.Now()
		defs, report := definitions.LoadWith([]string{doc}, ratelimit.Reader{}, def)
		if !report.OK() {
			t.Errorf("%s: refused under the validation default: %v", doc, report.Problems)
			continue
		}
		took := time.Since(start)
		root := readJSONish(t, doc)
		dir := filepath.Dir(doc)
		var docOps, docCompiled, docExamples, docValid int
		for _, d := range defs {
			if d.API == nil {
				continue
			}
			oracle := kinDocument(d.Data)
			for i := range d.API.Operations {
				op := &d.API.Operations[i]
				docOps++
				if op.Validation == nil || !op.Validation.Request {
					continue
				}
				docCompiled++
				if op.Validation.Body == nil {
					continue
				}
				for _, ex := range bodyExamples(t, root, dir, op) {
					m := op.Validation.Body.Find(ex.mediaType)
					if m == nil || m.Schema == nil {
						continue
					}
					docExamples++
					vs := m.Schema.Validate(ex.body)
					if len(vs) == 0 {
						docValid++
					}
					kinErr, ok := kinVerdict(oracle, op, ex)
					if !ok {
						continue
					}
					compared++
					if (len(vs) == 0) != (kinErr == nil) {
						disagreements++
						t.Logf("%s %s %s example: jsonbody %v, kin-openapi %v", filepath.Base(filepath.Dir(doc)), op.Key(), ex.mediaType, vs, firstLine(fmt.Sprint(kinErr)))
					}
				}
			}
		}
		t.Logf("%-60s %4d operations, %4d validated (%3d%%), %3d/%3d body examples valid, loaded in %v",
			strings.TrimPrefix(doc, corpus+"/"), docOps, docCompiled, 100*docCompiled/max(docOps, 1), docValid, docExamples, took.Round(time.Millisecond))
		ops, compiled, examples, valid = ops+docOps, compiled+docCompiled, examples+docExamples, valid+docValid
	}
	t.Logf("all: %d operations, %d validated; %d of %d request-body examples valid; %d compared with kin-openapi, %d disagreements", ops, compiled, valid, examples, compared, disagreements)
	if ops == 0 || compared < 100 {
		t.Fatalf("the corpus gave %d operations and %d examples to compare: too few to say anything", ops, compared)
	}
	// Nearly every operation compiles: what does not names its keyword or defect in a warning.
	if compiled*100 < ops*90 {
		t.Errorf("only %d of %d operations compiled for validation", compiled, ops)
	}
	if disagreements*100 > compared*2 {
		t.Errorf("jsonbody and kin-openapi disagree on %d of %d examples", disagreements, compared)
	}
}

// kinDocument is the stored document as kin-openapi loads it whole (nil if it cannot).
func kinDocument(data []byte) *openapi3.T {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil || !strings.HasPrefix(doc.OpenAPI, "3.0") {
		return nil // kin-openapi's 3.0 validator is the oracle; 3.1 it compiles per call
	}
	return doc
}

// kinVerdict is kin-openapi's answer on an example (ok false: it has none to give).
func kinVerdict(doc *openapi3.T, op *apimodel.Operation, ex bodyExample) (error, bool) {
	if doc == nil {
		return nil, false
	}
	item := doc.Paths.Value(op.Path)
	if item == nil || item.GetOperation(op.Method) == nil {
		return nil, false
	}
	rb := item.GetOperation(op.Method).RequestBody
	if rb == nil || rb.Value == nil {
		return nil, false
	}
	media := rb.Value.Content.Get(ex.mediaType)
	if media == nil || media.Schema == nil || media.Schema.Value == nil {
		return nil, false
	}
	var v any
	if json.Unmarshal(ex.body, &v) != nil {
		return nil, false
	}
	return media.Schema.Value.VisitJSON(v, openapi3.MultiErrors()), true
}

type bodyExample struct {
	mediaType string
	body      []byte
}

// bodyExamples reads an operation's request-body examples from the document itself
// (example and examples[*].value of each media type), independently of the product.
func bodyExamples(t *testing.T, root map[string]any, dir string, op *apimodel.Operation) []bodyExample {
	paths, _ := root["paths"].(map[string]any)
	item, idir := deref(t, root, dir, paths[op.Path])
	it, _ := item.(map[string]any)
	o, _ := it[strings.ToLower(op.Method)].(map[string]any)
	rbv, rdir := deref(t, root, idir, o["requestBody"])
	rb, _ := rbv.(map[string]any)
	content, _ := rb["content"].(map[string]any)
	var out []bodyExample
	for mt, v := range content {
		media, mdir := deref(t, root, rdir, v)
		mm, _ := media.(map[string]any)
		var values []any
		if ex, ok := mm["example"]; ok {
			values = append(values, ex)
		}
		exs, _ := mm["examples"].(map[string]any)
		for _, e := range exs {
			ev, _ := deref(t, root, mdir, e)
			if em, ok := ev.(map[string]any); ok {
				if val, ok := em["value"]; ok {
					values = append(values, val)
				}
			}
		}
		for _, val := range values {
			if s, isString := val.(string); isString && strings.HasPrefix(strings.TrimSpace(s), "{") {
				out = append(out, bodyExample{mt, []byte(s)}) // an example written as JSON text
				continue
			}
			b, err := json.Marshal(val)
			if err != nil {
				continue
			}
			out = append(out, bodyExample{mt, b})
		}
	}
	return out
}
