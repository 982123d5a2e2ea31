package openapi

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/jsonbody"
)

// validationSetting is what x-tollgate-validation says on the document or an operation.
type validationSetting struct {
	request, requestSet bool
	maxBody             int64
	at                  string // where request was set, for problems
}

// validation reads x-tollgate-validation: {request: true|false, maxBodySize: BYTES,
// response: off}. Fields not set are inherited from outer.
func (e extensions) validation(outer validationSetting) validationSetting {
	out := outer
	v, key, ok := e.get("validation")
	if !ok {
		return out
	}
	at := e.path + "." + key
	m, isMap := v.(map[string]any)
	if !isMap {
		e.p.fail(at, "must be an object like {request: true}, got %s", kind(v))
		return out
	}
	for k, fv := range m {
		switch k {
		case "request":
			b, isBool := fv.(bool)
			if !isBool {
				e.p.fail(at+".request", "must be true or false, got %s", kind(fv))
				continue
			}
			out.request, out.requestSet, out.at = b, true, at+".request"
		case "maxBodySize":
			n, err := bodySize(fv)
			if err != nil {
				e.p.fail(at+".maxBodySize", "%v", err)
				continue
			}
			out.maxBody = n
		case "response":
			if s, _ := fv.(string); s != "off" && fv != false {
				e.p.fail(at+".response", "response validation is not available yet: only off is accepted")
			}
		default:
			e.p.fail(at+"."+k, "unknown field (known: request, maxBodySize, response)")
		}
	}
	return out
}

// bodySize reads a size in bytes: a number, or text with a unit (512KiB, 2MiB, 1MB).
func bodySize(v any) (int64, error) {
	var n int64
	switch x := v.(type) {
	case json.Number:
		i, err := x.Int64()
		if err != nil {
			return 0, fmt.Errorf("%s is not a whole number of bytes", x)
		}
		n = i
	case float64:
		n = int64(x)
		if float64(n) != x {
			return 0, fmt.Errorf("%v is not a whole number of bytes", x)
		}
	case string:
		units := []struct {
			suffix string
			mult   int64
		}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"KB", 1000}, {"MB", 1000 * 1000}, {"B", 1}, {"", 1}}
		for _, u := range units {
			if num, ok := strings.CutSuffix(x, u.suffix); ok {
				var i int64
				if _, err := fmt.Sscanf(strings.TrimSpace(num), "%d", &i); err != nil || fmt.Sprint(i) != strings.TrimSpace(num) {
					return 0, fmt.Errorf("%q is not a size like 1048576, 512KiB or 2MiB", x)
				}
				n = i * u.mult
				break
			}
		}
	default:
		return 0, fmt.Errorf("must be a size in bytes or like 512KiB, got %s", kind(v))
	}
	if n <= 0 || n > apimodel.MaxBodyLimit {
		return 0, fmt.Errorf("%d bytes: must be 1 byte to %d MiB", n, apimodel.MaxBodyLimit>>20)
	}
	return n, nil
}

// validations compiles the request rules of the operations whose validation is on, from
// the parts of the document the gateway view leaves out (parameters, request bodies and
// the components they refer to), read only when some operation validates. A rule that
// cannot be compiled refuses the API when its definition asks for validation, and is a
// warning (the operation is served unvalidated) when only the gateway's default does.
func (p *parser) validations(api *apimodel.API, tree map[string]any, swagger bool, def apimodel.ValidationDefaults) {
	on := map[string]validationSetting{}
	for i := range api.Operations {
		op := &api.Operations[i]
		s := p.opValidation[op.Key()]
		if !s.requestSet {
			s.request = def.Request
		}
		if s.maxBody == 0 {
			s.maxBody = def.MaxBody
		}
		if s.maxBody == 0 {
			s.maxBody = apimodel.DefaultMaxBody
		}
		if s.request {
			on[op.Key()] = s
		}
	}
	if len(on) == 0 {
		return
	}
	doc, err := load(validationView(tree, on), swagger)
	if err != nil {
		p.cannotValidate(on, "$", "the parameters, request bodies or components cannot be read for validation: "+err.Error())
		return
	}
	for i := range api.Operations {
		op := &api.Operations[i]
		s, ok := on[op.Key()]
		if !ok {
			continue
		}
		item := doc.Paths.Value(op.Path)
		var o *openapi3.Operation
		if item != nil {
			o = item.GetOperation(op.Method)
		}
		if o == nil {
			continue
		}
		at := apimodel.OpPath(op.Path, op.Method)
		v, where, err := compileOperation(item, o, s.maxBody)
		if err != nil {
			p.cannotValidate(map[string]validationSetting{op.Key(): s}, at+where, err.Error())
			continue
		}
		op.Validation = v
	}
}

// cannotValidate reports rules that do not compile: a problem for each operation whose
// definition asked for validation, one warning for those the gateway default turned on.
func (p *parser) cannotValidate(ops map[string]validationSetting, at, reason string) {
	var byDefault []string
	for key, s := range ops {
		if s.requestSet {
			p.fail(at, "cannot validate %s (asked for at %s): %s", key, s.at, reason)
		} else {
			byDefault = append(byDefault, key)
		}
	}
	if len(byDefault) > 0 {
		sort.Strings(byDefault)
		p.warn(at, "%s: served without request validation, which the gateway's default asks for: %s", firstFew(byDefault), reason)
	}
}

// validationView is the part of a document the validated operations' rules need: the
// whole components (or Swagger 2.0's definitions and parameters) and, for those
// operations, their parameters and request bodies.
func validationView(tree map[string]any, on map[string]validationSetting) map[string]any {
	out := map[string]any{}
	swagger := swagger2(tree)
	for k, v := range tree {
		switch k {
		case "openapi", "swagger", "info", "components", "definitions", "parameters", "consumes", "basePath":
			out[k] = v
		}
	}
	paths := map[string]any{}
	for key, item := range obj(tree["paths"]) {
		it := map[string]any{}
		for k, v := range obj(item) {
			if k == "parameters" {
				it[k] = v
			}
			if !isMethod(k) {
				continue
			}
			if _, ok := on[strings.ToUpper(k)+" "+key]; !ok {
				continue
			}
			op := map[string]any{"responses": map[string]any{"default": map[string]any{"description": ""}}}
			for f, fv := range obj(v) {
				if f == "parameters" || f == "requestBody" || (swagger && f == "consumes") {
					op[f] = fv
				}
			}
			it[k] = op
		}
		paths[key] = it
	}
	out["paths"] = paths
	return out
}

// compileOperation compiles one operation's rules; on error it also says where (a JSON
// path below the operation).
func compileOperation(item *openapi3.PathItem, o *openapi3.Operation, maxBody int64) (*apimodel.Validation, string, error) {
	v := &apimodel.Validation{MaxBody: maxBody}
	// The operation's parameters override its path item's of the same name and place.
	type key struct{ in, name string }
	seen := map[key]bool{}
	all := append(append(openapi3.Parameters{}, o.Parameters...), item.Parameters...)
	for i, ref := range all {
		where := fmt.Sprintf(".parameters[%d]", i)
		if i >= len(o.Parameters) {
			where = fmt.Sprintf("(path item).parameters[%d]", i-len(o.Parameters))
		}
		if ref == nil || ref.Value == nil {
			return nil, where, fmt.Errorf("unresolved parameter reference")
		}
		k := key{ref.Value.In, ref.Value.Name}
		if ref.Value.In == "header" {
			k.name = strings.ToLower(k.name)
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		prm, err := compileParam(ref.Value)
		if err != nil {
			return nil, where, err
		}
		if prm != nil {
			v.Params = append(v.Params, *prm)
		}
	}
	if rb := o.RequestBody; rb != nil {
		if rb.Value == nil {
			return nil, ".requestBody", fmt.Errorf("unresolved request body reference %q", rb.Ref)
		}
		body, where, err := compileBody(rb.Value)
		if err != nil {
			return nil, ".requestBody" + where, err
		}
		v.Body = body
	}
	return v, "", nil
}

func compileBody(rb *openapi3.RequestBody) (*apimodel.Body, string, error) {
	b := &apimodel.Body{Required: rb.Required}
	types := make([]string, 0, len(rb.Content))
	for t := range rb.Content {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		mt := apimodel.MediaType(t)
		m := apimodel.Media{Type: mt}
		if s := rb.Content[t].Schema; s != nil && apimodel.IsJSON(mt) {
			val, err := jsonbody.Compile(s.Value)
			if s.Value == nil {
				err = fmt.Errorf("unresolved schema reference %q", s.Ref)
			}
			if err != nil {
				return nil, ".content['" + t + "'].schema", err
			}
			m.Schema = val
		}
		b.Media = append(b.Media, m)
	}
	// Most specific first: exact types, then type/*, then */*.
	rank := func(t string) int {
		switch {
		case t == "*/*":
			return 2
		case strings.HasSuffix(t, "/*"):
			return 1
		}
		return 0
	}
	sort.SliceStable(b.Media, func(i, j int) bool { return rank(b.Media[i].Type) < rank(b.Media[j].Type) })
	return b, "", nil
}

// compileParam compiles a parameter's rule. Path, query, header and cookie parameters
// with a scalar or array schema, in the styles OpenAPI defines for them, are checked;
// others are refused, so an operation is validated fully or not at all.
func compileParam(p *openapi3.Parameter) (*apimodel.Param, error) {
	if p.In == "header" && (strings.EqualFold(p.Name, "accept") || strings.EqualFold(p.Name, "content-type") || strings.EqualFold(p.Name, "authorization")) {
		return nil, nil // OpenAPI: such a parameter is ignored
	}
	if p.Schema == nil || p.Schema.Value == nil {
		return nil, fmt.Errorf("parameter %q: a parameter described by content, not schema, cannot be validated yet", p.Name)
	}
	s := p.Schema.Value
	prm := &apimodel.Param{Name: p.Name, In: apimodel.ParamIn(p.In), Required: p.Required}
	style := p.Style
	if style == "" {
		style = "simple"
		if p.In == "query" || p.In == "cookie" {
			style = "form"
		}
	}
	prm.Explode = style == "form"
	if p.Explode != nil {
		prm.Explode = *p.Explode
	}
	switch {
	case s.Type.Is("object") || style == "deepObject":
		return nil, fmt.Errorf("parameter %q: object parameters cannot be validated yet", p.Name)
	case style == "label" || style == "matrix":
		return nil, fmt.Errorf("parameter %q: style %s cannot be validated yet", p.Name, style)
	}
	types := s
	if s.Type.Is("array") {
		prm.Array = true
		switch style {
		case "form", "simple":
			prm.Sep = ','
		case "spaceDelimited":
			prm.Sep = ' '
		case "pipeDelimited":
			prm.Sep = '|'
		}
		if s.Items == nil || s.Items.Value == nil {
			types = &openapi3.Schema{}
		} else {
			types = s.Items.Value
		}
	}
	prm.Types = paramTypes(types)
	val, err := jsonbody.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("parameter %q: %v", p.Name, err)
	}
	prm.Schema = val
	return prm, nil
}

// paramTypes are the scalar types a parameter's text may be read as: those its schema
// names, or a string when it names none.
func paramTypes(s *openapi3.Schema) apimodel.ParamTypes {
	var t apimodel.ParamTypes
	if s.Type == nil || len(*s.Type) == 0 {
		return apimodel.ParamString
	}
	for _, name := range *s.Type {
		switch name {
		case "string":
			t |= apimodel.ParamString
		case "number":
			t |= apimodel.ParamNumber
		case "integer":
			t |= apimodel.ParamInteger
		case "boolean":
			t |= apimodel.ParamBoolean
		case "null":
			t |= apimodel.ParamNull
		}
	}
	if t == 0 {
		t = apimodel.ParamString
	}
	return t
}
