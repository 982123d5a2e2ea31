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
	response            apimodel.ResponseMode
	responseSet         bool
	maxBody             int64
	at                  string // where request or response was set, for problems
}

// explicit: the definition asks for validation itself.
func (s validationSetting) explicit() bool {
	return (s.requestSet && s.request) || (s.responseSet && s.response.On())
}

// validation reads x-tollgate-validation: {request: true|false, maxBodySize: BYTES,
// response: enforce|report|off}. Fields not set are inherited from outer.
func (e extensions) validation(outer validationSetting) validationSetting {
	out := outer
	m, at, ok := e.object("validation", " like {request: true}")
	if !ok {
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
			s, _ := fv.(string)
			if fv == false {
				s = string(apimodel.ResponseOff)
			}
			if m := apimodel.ResponseMode(s); s == "" || !m.Valid() {
				e.p.fail(at+".response", "must be enforce, report or off, got %v", fv)
				continue
			}
			out.response, out.responseSet, out.at = apimodel.ResponseMode(s), true, at+".response"
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
		if !s.responseSet {
			s.response = def.Response
		}
		if s.maxBody == 0 {
			s.maxBody = def.MaxBody
		}
		if s.maxBody == 0 {
			s.maxBody = apimodel.DefaultMaxBody
		}
		if s.request || s.response.On() {
			on[op.Key()] = s
		}
	}
	if len(on) == 0 {
		return
	}
	doc, err := load(validationView(tree, on), swagger)
	for i := range api.Operations {
		op := &api.Operations[i]
		s, ok := on[op.Key()]
		if !ok {
			continue
		}
		at := apimodel.OpPath(op.Path, op.Method)
		opDoc := doc
		if err != nil {
			// Something some operation refers to cannot be read: each operation alone,
			// so that only those that use it go unvalidated.
			one := map[string]validationSetting{op.Key(): s}
			var opErr error
			if opDoc, opErr = load(validationView(tree, one), swagger); opErr != nil {
				p.cannotValidate(one, at, "its parameters, request body, responses or the components they use cannot be read for validation: "+opErr.Error())
				continue
			}
		}
		item := opDoc.Paths.Value(op.Path)
		var o *openapi3.Operation
		if item != nil {
			o = item.GetOperation(op.Method)
		}
		if o == nil {
			continue
		}
		v, where, cerr := compileOperation(item, o, s)
		if cerr != nil {
			p.cannotValidate(map[string]validationSetting{op.Key(): s}, at+where, cerr.Error())
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
		if s.explicit() {
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

// validationView is the part of a document the validated operations' rules need: for
// those operations, their parameters, request bodies and (with response validation) their
// responses, and only the components — or Swagger 2.0's definitions, parameters and
// responses — they refer to, directly or through one another. Annotations that validate
// nothing (example, examples, externalDocs, xml) are left out: a defect in them, or in a
// component no validated operation uses, does not stop validation.
func validationView(tree map[string]any, on map[string]validationSetting) map[string]any {
	out := map[string]any{}
	swagger := swagger2(tree)
	for k, v := range tree {
		switch k {
		case "openapi", "swagger", "info", "consumes", "produces", "basePath":
			out[k] = v
		}
	}
	paths := map[string]any{}
	for key, item := range obj(tree["paths"]) {
		it := map[string]any{}
		for k, v := range obj(item) {
			if !isMethod(k) {
				continue
			}
			s, ok := on[strings.ToUpper(k)+" "+key]
			if !ok {
				continue
			}
			op := map[string]any{"responses": map[string]any{"default": map[string]any{"description": ""}}}
			for f, fv := range obj(v) {
				if f == "parameters" || f == "requestBody" || (swagger && (f == "consumes" || f == "produces")) || (f == "responses" && s.response.On()) {
					op[f] = fv
				}
			}
			it[k] = op
		}
		if len(it) > 0 {
			if ps, ok := obj(item)["parameters"]; ok {
				it["parameters"] = ps
			}
			paths[key] = it
		}
	}
	out["paths"] = paths
	for _, unit := range referenced(tree, paths) {
		place(out, tree, unit)
	}
	return withoutAnnotations(out, "").(map[string]any)
}

// referenced lists the components (as pointer segments: components/schemas/Pet, or
// Swagger 2.0's definitions/Pet) that v refers to, directly or through one another.
func referenced(tree map[string]any, v any) [][]string {
	seen := map[string]bool{}
	var out [][]string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if unit := componentOf(ref); unit != nil && !seen[strings.Join(unit, "/")] {
					seen[strings.Join(unit, "/")] = true
					out = append(out, unit)
					walk(componentAt(tree, unit))
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// componentOf is the component a local reference points into, or nil.
func componentOf(ref string) []string {
	frag, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	segs := strings.Split(frag, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
	}
	switch {
	case segs[0] == "components" && len(segs) >= 3:
		return segs[:3]
	case (segs[0] == "definitions" || segs[0] == "parameters" || segs[0] == "responses") && len(segs) >= 2:
		return segs[:2]
	}
	return nil
}

func componentAt(tree map[string]any, unit []string) any {
	var v any = tree
	for _, s := range unit {
		v = obj(v)[s]
	}
	return v
}

// place copies the component at unit from tree into out.
func place(out, tree map[string]any, unit []string) {
	v := componentAt(tree, unit)
	if v == nil {
		return
	}
	m := out
	for _, s := range unit[:len(unit)-1] {
		next, ok := m[s].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[s] = next
		}
		m = next
	}
	m[unit[len(unit)-1]] = v
}

// nameMaps are the keys whose value maps names to objects (a property named "example" is
// a property, not an annotation).
var nameMaps = map[string]bool{"properties": true, "patternProperties": true, "$defs": true, "definitions": true, "dependentSchemas": true,
	"schemas": true, "parameters": true, "responses": true, "requestBodies": true, "headers": true, "content": true, "paths": true,
	"securitySchemes": true, "links": true, "callbacks": true, "encoding": true, "mapping": true, "variables": true, "components": true}

// withoutAnnotations copies v without example, examples, externalDocs and xml.
func withoutAnnotations(v any, parent string) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if !nameMaps[parent] && (k == "example" || k == "examples" || k == "externalDocs" || k == "xml") {
				continue
			}
			out[k] = withoutAnnotations(e, k)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutAnnotations(e, "")
		}
		return out
	}
	return v
}

// compileOperation compiles one operation's rules; on error it also says where (a JSON
// path below the operation).
func compileOperation(item *openapi3.PathItem, o *openapi3.Operation, s validationSetting) (*apimodel.Validation, string, error) {
	v := &apimodel.Validation{Request: s.request, MaxBody: s.maxBody}
	if s.response.On() {
		v.Response = s.response
		rs, where, err := compileResponses(o.Responses)
		if err != nil {
			return nil, where, err
		}
		v.Responses = rs
	}
	if !s.request {
		return v, "", nil
	}
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
	media, where, err := compileContent(rb.Content)
	if err != nil {
		return nil, where, err
	}
	return &apimodel.Body{Required: rb.Required, Media: media}, "", nil
}

// compileContent compiles a content map's JSON schemas, most specific type first: exact
// types, then structured-syntax ranges ("application/*+json"), then type/*, then */*.
func compileContent(content openapi3.Content) ([]apimodel.Media, string, error) {
	types := make([]string, 0, len(content))
	for t := range content {
		types = append(types, t)
	}
	sort.Strings(types)
	var out []apimodel.Media
	for _, t := range types {
		mt := apimodel.MediaType(t)
		m := apimodel.Media{Type: mt}
		if s := content[t].Schema; s != nil && apimodel.IsJSON(mt) {
			val, err := jsonbody.Compile(s.Value)
			if s.Value == nil {
				err = fmt.Errorf("unresolved schema reference %q", s.Ref)
			}
			if err != nil {
				return nil, ".content['" + t + "'].schema", err
			}
			m.Schema = val
		}
		out = append(out, m)
	}
	rank := func(t string) int {
		switch {
		case t == "*/*":
			return 3
		case strings.HasSuffix(t, "/*"):
			return 2
		case strings.Contains(t, "*"):
			return 1
		}
		return 0
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].Type) < rank(out[j].Type) })
	return out, "", nil
}

// compileResponses compiles the declared responses: exact statuses first, then ranges
// ("2XX"), then default.
func compileResponses(rs *openapi3.Responses) ([]apimodel.Response, string, error) {
	if rs == nil {
		return nil, "", nil
	}
	var out []apimodel.Response
	for status, ref := range rs.Map() {
		where := ".responses['" + status + "']"
		if ref == nil || ref.Value == nil {
			return nil, where, fmt.Errorf("unresolved response reference")
		}
		media, w, err := compileContent(ref.Value.Content)
		if err != nil {
			return nil, where + w, err
		}
		out = append(out, apimodel.Response{Status: status, Media: media})
	}
	rank := func(s string) int {
		switch {
		case s == "default":
			return 2
		case len(s) == 3 && strings.EqualFold(s[1:], "XX"):
			return 1
		}
		return 0
	}
	sort.Slice(out, func(i, j int) bool {
		if ri, rj := rank(out[i].Status), rank(out[j].Status); ri != rj {
			return ri < rj
		}
		return out[i].Status < out[j].Status
	})
	return out, "", nil
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
	style := paramStyle(p)
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

// paramStyle is a parameter's style, or OpenAPI's default for its place.
func paramStyle(p *openapi3.Parameter) string {
	switch {
	case p.Style != "":
		return p.Style
	case p.In == "query" || p.In == "cookie":
		return "form"
	}
	return "simple"
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
