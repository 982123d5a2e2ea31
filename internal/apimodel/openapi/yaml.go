package openapi

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// decodeYAML reads YAML 1.2 — as OpenAPI documents are written: "y", "on" and "no" are
// strings, and 1.0 stays 1.0; a date stays the text it is — into plain values. A key
// written twice in one mapping is refused with its line (the second would silently replace
// the first: a path's operations, say). Merge keys (<<) are honoured; aliases are expanded
// up to a bound proportional to the document.
func decodeYAML(data []byte) (any, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	// Aliases may repeat a part of the document; they may not make it more than a few
	// times larger than it is (a billion laughs in a kilobyte).
	c := converter{budget: 100_000 + 4*len(data)}
	return c.value(&root)
}

type converter struct {
	budget int // nodes left to expand: aliases can make a small document huge
	depth  int
}

func (c *converter) value(n *yaml.Node) (any, error) {
	if c.budget--; c.budget < 0 {
		return nil, fmt.Errorf("line %d: the document expands to too many values (aliases)", n.Line)
	}
	if c.depth++; c.depth > 1000 {
		return nil, fmt.Errorf("line %d: nested too deep", n.Line)
	}
	defer func() { c.depth-- }()
	switch n.Kind {
	case 0: // an empty document
		return nil, nil
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0])
	case yaml.AliasNode:
		return c.value(n.Alias)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.value(e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return c.mapping(n)
	case yaml.ScalarNode:
		return scalar(n), nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node", n.Line)
}

func (c *converter) mapping(n *yaml.Node) (map[string]any, error) {
	out := make(map[string]any, len(n.Content)/2)
	lines := make(map[string]int, len(n.Content)/2)
	var merged []map[string]any
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			m, err := c.merge(v)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		key, err := c.key(k)
		if err != nil {
			return nil, err
		}
		if prev, dup := lines[key]; dup {
			return nil, fmt.Errorf("line %d: key %q is already defined at line %d", k.Line, key, prev)
		}
		lines[key] = k.Line
		val, err := c.value(v)
		if err != nil {
			return nil, err
		}
		out[key] = val
	}
	for _, m := range merged { // keys of the mapping itself win over merged ones
		for k, v := range m {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return out, nil
}

func (c *converter) merge(v *yaml.Node) ([]map[string]any, error) {
	for v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	nodes := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		nodes = v.Content
	}
	var out []map[string]any
	for _, e := range nodes {
		val, err := c.value(e)
		if err != nil {
			return nil, err
		}
		m, ok := val.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("line %d: a merge key (<<) needs a mapping", e.Line)
		}
		out = append(out, m)
	}
	return out, nil
}

// key is a mapping key as JSON has it: a string (a number or boolean key as written).
func (c *converter) key(k *yaml.Node) (string, error) {
	for k.Kind == yaml.AliasNode {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: a mapping key must be a scalar", k.Line)
	}
	// A key that YAML reads as a number or a boolean is written as that value, as JSON
	// converters write it (010 is "10", True is "true").
	switch v := scalar(k).(type) {
	case nil:
		return "null", nil
	case bool:
		return strconv.FormatBool(v), nil
	case json.Number:
		if k.ShortTag() == "!!float" {
			f, _ := v.Float64()
			return strconv.FormatFloat(f, 'g', -1, 64), nil
		}
		return v.String(), nil
	}
	return k.Value, nil
}

// scalar reads a scalar by the tag YAML 1.2's core schema resolved for it.
func scalar(n *yaml.Node) any {
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		return strings.EqualFold(n.Value, "true")
	case "!!int":
		v := strings.ReplaceAll(n.Value, "_", "")
		if i, err := strconv.ParseInt(v, 0, 64); err == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		if u, err := strconv.ParseUint(v, 0, 64); err == nil {
			return json.Number(strconv.FormatUint(u, 10))
		}
		if i, err := strconv.ParseInt(v, 10, 64); err == nil { // 080: leading zeros, decimal
			return json.Number(strconv.FormatInt(i, 10))
		}
		if o, ok := strings.CutPrefix(v, "0o"); ok { // as the library reads 0o+17
			if i, err := strconv.ParseInt(o, 8, 64); err == nil {
				return json.Number(strconv.FormatInt(i, 10))
			}
		}
	case "!!float":
		v := strings.ReplaceAll(n.Value, "_", "")
		f, err := strconv.ParseFloat(v, 64)
		if err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			if validJSONNumber(v) {
				return json.Number(v) // as written: 1.0 stays 1.0
			}
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	return n.Value
}

// validJSONNumber says whether s is a number as JSON writes them.
func validJSONNumber(s string) bool {
	var v any
	return json.Unmarshal([]byte(s), &v) == nil && func() bool { _, ok := v.(float64); return ok }()
}
