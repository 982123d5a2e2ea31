package rescache

import (
	"errors"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// watchOf is an open watch of either protocol: its request, its stream's subscription,
// where its answer goes, and the change its stream holds what it subscribes to as of.
type watchOf[Q, R any] struct {
	req  Q
	sub  Subscription
	ch   chan R
	asOf uint64
}

// watch is an open state-of-the-world watch; deltaWatch a delta one.
type (
	watch      = watchOf[*cachev3.Request, cachev3.Response]
	deltaWatch = watchOf[*cachev3.DeltaRequest, cachev3.DeltaResponse]
)

// CreateWatch answers a state-of-the-world request at once when the client lacks something
// (for listeners, clusters and route scopes: with all it subscribes to), or keeps the
// watch until a change concerns it. A client whose version tells nothing is answered at
// once, even with nothing, so that it has a version.
func (c *Cache) CreateWatch(req *cachev3.Request, sub Subscription, ch chan cachev3.Response) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, errors.New("rescache: a watch for " + req.GetTypeUrl() + " on a cache of " + c.typeURL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &watch{req: req, sub: sub, ch: ch, asOf: c.n}
	if c.n > 0 {
		h := c.sotwHolding(req, sub)
		send, gone := c.lacks(sub, h)
		if len(send) > 0 || c.full && len(gone) > 0 || !h.known {
			ch <- c.answer(w, send)
			return func() {}, nil
		}
	}
	return open(c, c.watches, w), nil
}

// sotwHolding is what a state-of-the-world stream holds: what its last answer left it
// (Held) when the request's version is that answer's (an ACK, or a NACK, which the stream
// server presents with the refused version: that is not sent again); else what a version
// tells — every resource, for a wildcard stream of a full type, as such answers carry
// all — or nothing; c.mu is held.
func (c *Cache) sotwHolding(req *cachev3.Request, sub Subscription) holding {
	asOf, ok := c.known(req.GetVersionInfo())
	held := sub.Held()
	mine := ok && held.AsOf == asOf && held.AsOf > 0
	switch {
	case !ok:
		return holding{}
	case mine && held.Wildcard && (sub.IsWildcard() || !c.full):
		// Every resource (a stream that now names some of them holds those; one of a
		// full type must be answered with only those).
		return holding{known: true, asOf: asOf, all: true}
	case mine && !held.Wildcard:
		fresh, all := c.freshNames(sub, held)
		return holding{known: true, asOf: asOf, fresh: fresh, freshAll: all}
	case held.AsOf == 0 && c.full && sub.IsWildcard():
		return holding{known: true, asOf: asOf, all: true}
	}
	return holding{known: true, asOf: asOf, freshAll: true}
}

// freshNames is what a state-of-the-world stream subscribes to beyond held, the names it
// held all of: nil when nothing, all when held tells nothing; c.mu is held.
func (c *Cache) freshNames(sub Subscription, held Held) (fresh []string, all bool) {
	switch {
	case held.Names == nil:
		return nil, true
	case sub.IsWildcard():
		for name := range c.res {
			if _, ok := held.Names[name]; !ok {
				fresh = append(fresh, name)
			}
		}
		return fresh, false
	case sub.Fingerprint() == held.Set:
		return nil, false // the same names (the set of every ACK)
	}
	for name := range sub.SubscribedResources() {
		if _, ok := held.Names[name]; !ok {
			fresh = append(fresh, name)
		}
	}
	return fresh, false
}

// answer is the state-of-the-world response to w: send, or for a full type every
// subscribed resource; c.mu is held.
func (c *Cache) answer(w *watch, send []*entry) *response {
	r := &response{req: w.req, version: c.version(), typeURL: c.typeURL,
		held: Held{AsOf: c.n, Wildcard: w.sub.IsWildcard()}}
	if !r.held.Wildcard {
		r.held.Names, r.held.Set = w.sub.SubscribedResources(), w.sub.Fingerprint()
	}
	if c.full {
		send = send[:0]
		if w.sub.IsWildcard() {
			for _, e := range c.res {
				send = append(send, e)
			}
		} else {
			for name := range w.sub.SubscribedResources() {
				if e := c.res[name]; e != nil {
					send = append(send, e)
				}
			}
		}
	}
	r.resources = c.join(send, false)
	return r
}
