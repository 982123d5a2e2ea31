package definitions

import (
	"strings"
	"testing"
)

func TestSplitMultiDocumentYAML(t *testing.T) {
	in := "# two definitions\n---\nkind: ThrottlingPolicy\nname: a\n---   # the API\nopenapi: 3.0.3\ninfo: {title: X, version: v1}\n...\n---\n# nothing here\n"
	docs := Split("f.yaml", []byte(in))
	if len(docs) != 2 {
		t.Fatalf("%d documents: %q", len(docs), docs)
	}
	if docs[0].Name != "f.yaml (document 1)" || !strings.Contains(string(docs[0].Data), "name: a") || strings.Contains(string(docs[0].Data), "openapi") {
		t.Errorf("first: %+v", docs[0])
	}
	if docs[1].Name != "f.yaml (document 2)" || !strings.HasPrefix(string(docs[1].Data), "openapi: 3.0.3") {
		t.Errorf("second: %q", docs[1].Data)
	}
	one := Split("g.json", []byte(`{"openapi": "3.0.3"}`))
	if len(one) != 1 || one[0].Name != "g.json" {
		t.Errorf("one document: %+v", one)
	}
	// A block scalar holding "---" indented is not a separator.
	block := Split("h.yaml", []byte("description: |\n  ---\n  text\n"))
	if len(block) != 1 {
		t.Errorf("indented --- split a document: %+v", block)
	}
}
