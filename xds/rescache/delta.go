package rescache

import (
	"errors"
	"strconv"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
)

// CreateDeltaWatch answers a delta request at once with the subscribed resources whose
// version the client does not hold and the ones it holds that are gone (or, to a new
// wildcard subscription, with what there is, even nothing), or keeps the watch until a
// change concerns it.
func (c *Cache) CreateDeltaWatch(req *cachev3.DeltaRequest, sub Subscription, ch chan cachev3.DeltaResponse) (func(), error) {
	if req.GetTypeUrl() != c.typeURL {
		return nil, errors.New("rescache: a watch for " + req.GetTypeUrl() + " on a cache of " + c.typeURL)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &deltaWatch{req: req, sub: sub, ch: ch, asOf: c.n}
	if c.n > 0 {
		held := sub.Held()
		h := deltaHolding(req, sub, held)
		if c.lost(h) {
			return nil, ErrResync
		}
		send, gone := c.lacks(sub, h)
		first := sub.IsWildcard() && req.GetResponseNonce() == "" && held.AsOf == 0 && len(held.Versions) == 0
		if len(send) > 0 || len(gone) > 0 || first {
			ch <- c.deltaAnswer(w, send, gone)
			return func() {}, nil
		}
	}
	return open(c, c.deltas, w), nil
}

// deltaHolding is what a delta stream holds: as of its last answer, what it subscribed to
// then (a delta request names what it newly subscribes to) and the versions the stream
// server noted since; or, for a new stream, the versions it presents.
func deltaHolding(req *cachev3.DeltaRequest, sub Subscription, held Held) holding {
	if held.AsOf == 0 || len(req.GetInitialResourceVersions()) > 0 {
		return holding{versions: held.Versions}
	}
	return holding{known: true, asOf: held.AsOf, all: held.Wildcard && sub.IsWildcard(),
		freshAll: sub.IsWildcard() && !held.Wildcard, fresh: req.GetResourceNamesSubscribe(), versions: held.Versions}
}

func (c *Cache) deltaAnswer(w *deltaWatch, send []*entry, gone []string) *deltaResponse {
	// Up to date as of now with everything it subscribes to: a later answer sends what
	// changed since, what the stream newly subscribes to, and removals of what was removed
	// since — so no name is kept per stream.
	r := &deltaResponse{req: w.req, version: c.prefix + strconv.FormatUint(c.n, 10), typeURL: c.typeURL, removed: gone,
		held: Held{AsOf: c.n, Wildcard: w.sub.IsWildcard()}}
	r.resources = c.join(send, true)
	return r
}
