package testutil

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"sigs.k8s.io/yaml"
)

// BigAPI is a generated OpenAPI 3.0 document of name (version v1) with ops operations on
// ops/2 paths, grown with schemas and descriptions of varied words to about size bytes of
// JSON, as large real descriptions are (most of their bytes are schemas and prose). Every
// operation needs the bearer scheme "oauth" with its own scope, op-<i>; the backend is
// backend. The same arguments give the same document.
func BigAPI(name string, ops, size int, backend string) []byte {
	r := rand.New(rand.NewPCG(uint64(ops), uint64(size)))
	words := strings.Fields("account order item price customer invoice payment status created updated " +
		"reference amount currency address shipment tracking region quantity discount product category " +
		"review rating session token owner member group policy limit window balance ledger entry note")
	prose := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[r.IntN(len(words))])
			if r.IntN(9) == 0 {
				fmt.Fprintf(&b, "-%d", r.IntN(1000))
			}
		}
		return b.String()
	}
	perOp := max(size/max(ops, 1), 600)
	schemas := map[string]any{}
	paths := map[string]any{}
	for i := 0; i < ops; i++ {
		path := fmt.Sprintf("/resource%d/{id}", i/2)
		method := []string{"get", "put"}[i%2]
		schema := fmt.Sprintf("Thing%d", i)
		props := map[string]any{}
		for budget := perOp - 500; budget > 0; {
			p := map[string]any{"type": "string", "description": prose(12), "example": prose(3)}
			props[fmt.Sprintf("%s_%d", words[r.IntN(len(words))], len(props))] = p
			budget -= 185
		}
		schemas[schema] = map[string]any{"type": "object", "description": prose(20), "properties": props}
		item, _ := paths[path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[path] = item
		}
		item[method] = map[string]any{
			"operationId": fmt.Sprintf("op%d", i),
			"summary":     prose(6),
			"security":    []any{map[string]any{"oauth": []any{fmt.Sprintf("op-%d", i)}}},
			"parameters":  []any{map[string]any{"name": "id", "in": "path", "required": true, "schema": map[string]any{"type": "string"}}},
			"responses": map[string]any{"200": map[string]any{"description": "ok",
				"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + schema}}}}},
		}
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info":    map[string]any{"title": name, "version": "v1", "description": prose(40)},
		"servers": []any{map[string]any{"url": backend}},
		"paths":   paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{"oauth": map[string]any{"type": "oauth2", "flows": map[string]any{
				"clientCredentials": map[string]any{"tokenUrl": "https://idp.example/token", "scopes": map[string]any{}}}}},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(err) // maps of strings always encode
	}
	return b
}

// BigAPIYAML is BigAPI written as YAML.
func BigAPIYAML(name string, ops, size int, backend string) []byte {
	y, err := yaml.JSONToYAML(BigAPI(name, ops, size, backend))
	if err != nil {
		panic(err)
	}
	return y
}
