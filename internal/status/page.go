package status

import (
	"html/template"
	"strings"
	"time"
)

var pageTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	},
	"join": strings.Join,
	"short": func(s string) string {
		if len(s) > 300 {
			return s[:300] + "…"
		}
		return s
	},
}).Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="15">
<title>Tollgate status</title>
<link rel="icon" href="data:,">
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
header { background: #1d2330; color: #fff; padding: 12px 24px; display: flex; gap: 24px; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 18px; margin: 0; }
header span { color: #c4c9d4; }
main { padding: 8px 24px 32px; max-width: 1400px; }
section { background: #fff; border: 1px solid #dde1e8; border-radius: 6px; margin: 16px 0; padding: 12px 16px; }
h2 { font-size: 15px; margin: 0 0 8px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceef2; vertical-align: top; }
th { font-weight: 600; color: #4a5263; background: #fafbfc; }
code { font: 12px ui-monospace, monospace; }
.ok { color: #137333; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
.muted { color: #6b7385; }
.api { margin: 12px 0 4px; font-weight: 600; }
</style>
</head>
<body>
<header>
<h1>Tollgate</h1>
<span>{{.Build.Version}}{{with .Build.Revision}} · {{.}}{{end}} · {{.Build.GoVersion}}</span>
<span>up since {{.Started.Format "2006-01-02 15:04:05 MST"}}</span>
<span id="readiness">{{if .Ready}}<b class="ok">ready</b>{{else}}<b class="bad">not ready</b>{{end}}</span>
</header>
<main>
<section id="ready">
<h2>Readiness</h2>
<table><tr><th>component</th><th>state</th></tr>
{{range .Readiness}}<tr><td>{{.Name}}</td><td>{{if .Reason}}<span class="bad">{{.Reason}}</span>{{else}}<span class="ok">ready</span>{{end}}</td></tr>
{{end}}</table>
</section>

{{if .Groups}}<section id="envoys">
<h2>Connected Envoys ({{len .Clients}})</h2>
<table><tr><th>node</th><th>group</th><th>kind</th><th>connected</th><th>last answer by type</th></tr>
{{$now := .Time}}{{range .Clients}}<tr><td><code>{{if .Node}}{{.Node}}{{else}}(no node){{end}}</code></td><td>{{.Group}}</td><td>{{.Kind}}</td><td>{{ago $now .Since}}</td>
<td>{{range .Answers}}<div>{{.Type}} <code>{{.Version}}</code> {{if .Acked}}<span class="ok">ACK</span>{{else}}<span class="bad">NACK</span> <span class="nack">{{short .Error}}</span>{{end}}</div>{{else}}<span class="muted">none yet</span>{{end}}</td></tr>
{{else}}<tr><td colspan="5" class="muted">no Envoy is connected</td></tr>
{{end}}</table>
<h2 style="margin-top:12px">Gateway groups</h2>
<table><tr><th>group</th><th>published</th><th>versions served</th></tr>
{{range .Groups}}<tr><td>{{.Name}}</td><td>{{ago $now .Published}}</td><td>{{range $t, $v := .Versions}}<div>{{$t}} <code>{{$v}}</code></div>{{end}}</td></tr>
{{end}}</table>
</section>

<section id="discovery">
<h2>Discovery keys</h2>
<table><tr><th>key</th><th>live addresses</th></tr>
{{range .Discovery}}<tr><td><code>{{.Key}}</code></td><td>{{range .Addresses}}<div><code>{{.}}</code></div>{{else}}<span class="bad">none</span>{{end}}</td></tr>
{{else}}<tr><td colspan="2" class="muted">no discovery key is followed</td></tr>
{{end}}</table>
</section>
{{end}}

{{if .Limiter}}<section id="enforcer">
<h2>Enforcer</h2>
<table>
<tr><th>revocations in force</th><td>{{.Revocations}}</td></tr>
<tr><th>throttling backend</th><td>{{.Limiter.Backend}} {{if .Limiter.Up}}<span class="ok">up</span>{{else}}<span class="bad">down (fallback in use)</span>{{end}}</td></tr>
</table>
</section>{{end}}

<section id="apis">
<h2>APIs ({{len .APIs}})</h2>
{{range .APIs}}<div class="api" id="api-{{.ID}}">{{.ID}} <span class="muted">{{.Title}} · {{.BasePath}}{{with .Hosts}} · {{join . ", "}}{{end}}{{with .Gateways}} · groups {{join . ", "}}{{end}}{{with .Throttling}} · throttling {{.}}{{end}}</span></div>
<div class="muted">production: {{range .Production}}<code>{{.}}</code> {{else}}none{{end}}{{with .Sandbox}} · sandbox: {{range .}}<code>{{.}}</code> {{end}}{{end}}</div>
<table><tr><th>operation</th><th>security</th><th>throttling</th><th>validation</th><th>endpoints</th></tr>
{{range .Operations}}<tr><td><code>{{.Key}}</code></td><td>{{.Security}}</td><td>{{.Throttling}}</td><td>{{.Validation}}</td><td>{{range .Production}}<code>{{.}}</code> {{end}}{{range .Sandbox}}sandbox <code>{{.}}</code> {{end}}</td></tr>
{{end}}</table>
{{else}}<p class="muted">no API is in force</p>
{{end}}
</section>
<p class="muted">Read at {{.Time.Format "2006-01-02 15:04:05 MST"}}; refreshed every 15 s. The same as JSON: <a href="/status.json">/status.json</a>.</p>
</main>
</body>
</html>
`))
