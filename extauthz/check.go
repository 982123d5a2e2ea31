package extauthz

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tollgate-gw/tollgate/internal/apimodel"
	"github.com/tollgate-gw/tollgate/internal/identity"
	"github.com/tollgate-gw/tollgate/policies/ratelimit"
)

// decision is one request on its way through the stages: what they found, and — once one
// denies — the fault. The stages read the request and write here; respond reads it.
type decision struct {
	ctx   context.Context
	attrs *authv3.AttributeContext
	h     *authv3.AttributeContext_HttpRequest

	// route
	api *apimodel.API
	op  *apimodel.Operation
	// authenticate: every credential checked, once (the client certificate's is shared by
	// peer and the mutualTLS scheme)
	creds credentialMemo
	// authorize: the principal the request speaks for; settled: decided before the
	// requirements (an open operation, an optional certificate), which are then not asked
	principal *identity.Principal
	settled   bool
	// throttle
	limit ratelimit.Decision
	// validate: what is wrong with the request (at most jsonbody.MaxViolations), and a
	// buffer for parameters' values; both keep their memory from one request to the next
	violations []violation
	scratch    []byte

	fault     *Fault
	reason    string           // for the debug log and never for the client
	scope     string           // the missing scope, for WWW-Authenticate
	allow     []string         // for a 405: the methods the path takes
	challenge challenge        // the WWW-Authenticate's kind (Bearer unless another kind's credential answered)
	key       *apimodel.Scheme // the API key scheme, for an APIKey challenge
	dpop      string           // the challenge is DPoP: "" no, "challenge", or its error code
	newNonce  bool             // give the client a new DPoP nonce (RFC 9449 §8.2)
	stripKey  *apimodel.Scheme // an API key to remove before the backend
}

var decisions = sync.Pool{New: func() any { return new(decision) }}

// deny ends the decision with a fault.
func (d *decision) deny(f *Fault, reason string) {
	d.fault, d.reason = f, reason
}

// stage is one step of a Check. It reads the request and what the stages before it found
// in the decision, and writes there; it returns whether the pipeline goes on — false when
// it denied the request (d.deny), after which no stage runs. A stage that has nothing to
// do for a request (a settled one: an open operation, a trusted certificate the API
// accepts alone) returns true and leaves the decision as it is.
type stage struct {
	name string
	run  func(e *Enforcer, d *decision) bool
}

// stages in the order the README describes.
var stages = [...]stage{
	{"route", (*Enforcer).route},
	{"peer", (*Enforcer).peer},
	{"authenticate", (*Enforcer).authenticate},
	{"authorize", (*Enforcer).authorize},
	{"revocation", (*Enforcer).revocation},
	{"throttle", (*Enforcer).throttle},
	{"validate", (*Enforcer).validate},
}

// timedEvery is how often a Check times its stages (one in timedEvery): the stage
// histogram stays representative and the other Checks pay nothing for it.
const timedEvery = 16

// Check implements the ext_authz service. It always answers with a CheckResponse: a
// cancelled or malformed request is denied, never failed with a bare gRPC error.
func (e *Enforcer) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	// The decision goes to the stages and authenticators through interfaces, so it would
	// live on the heap: it is reused instead (nothing keeps it after the response is made).
	d := decisions.Get().(*decision)
	defer func() {
		vs, sc := d.violations[:0], d.scratch[:0]
		*d = decision{violations: vs, scratch: sc}
		decisions.Put(d)
	}()
	d.attrs = req.GetAttributes()
	d.h = d.attrs.GetRequest().GetHttp()
	var span trace.Span
	if e.cfg.Tracer != nil {
		ctx, span = e.traceCheck(ctx, d.h, start)
	}
	d.ctx = ctx
	timed := rand.Uint32()%timedEvery == 0
	measure := timed || span != nil
	last := start
	var took [len(stages)]time.Duration // each stage's time, when measured (the API is known after the first)
	ran := 0
	for i := range stages {
		more := stages[i].run(e, d)
		ran = i + 1
		if measure {
			now := time.Now()
			took[i], last = now.Sub(last), now
		}
		if d.fault != nil || !more {
			break
		}
	}
	if timed {
		obs := e.m.timers(d.api).stages
		for i := range ran {
			obs[i].Observe(took[i].Seconds())
		}
	}
	if d.fault == nil && ctx.Err() != nil {
		d.deny(&FaultInternal, "request cancelled")
	}
	resp := e.respond(d)
	e.m.observe(d.api, d.fault, time.Since(start))
	e.m.observeOperation(d.api, d.op, d.fault)
	if span != nil {
		e.endCheck(ctx, span, d, start, took[:ran])
	}
	if ce := e.log.Check(zapcore.DebugLevel, "decision"); ce != nil {
		e.logDecision(ce, d)
	}
	return resp, nil
}

func (e *Enforcer) logDecision(ce *zapcore.CheckedEntry, d *decision) {
	fields := []zap.Field{zap.String("method", d.h.GetMethod()), zap.String("path", requestPath(d.h)), zap.Bool("allowed", d.fault == nil)}
	if d.api != nil {
		fields = append(fields, zap.String("api", d.api.ID()))
	}
	if d.op != nil {
		fields = append(fields, zap.String("operation", d.op.Key()))
	}
	if d.fault != nil {
		fields = append(fields, zap.Int("code", d.fault.Code), zap.String("reason", d.reason))
	}
	if p := d.principal; p != nil {
		fields = append(fields, zap.String("subject", p.Subject), zap.String("client_id", p.ClientID))
	}
	ce.Write(fields...)
}
