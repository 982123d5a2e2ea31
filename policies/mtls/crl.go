package mtls

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// crlFile is one CRL file as last read well: whose list it is, what it revokes, until when,
// and the file's size and time then.
type crlFile struct {
	issuer     string // raw subject of the CA that signed it
	revoked    []string
	nextUpdate time.Time
	stamp      stamp
	sum        [32]byte // of the file's bytes: a file read again unchanged changes nothing
}

// stamp tells a file changed: its modification time and size.
type stamp struct {
	mod  time.Time
	size int64
}

func stampOf(f string) (stamp, error) {
	fi, err := os.Stat(f)
	if err != nil {
		return stamp{}, err
	}
	return stamp{fi.ModTime(), fi.Size()}, nil
}

// readCRL reads a CRL file, PEM or DER, checking its signature by a CA of CAFiles (RFC
// 5280 §6.3.3 (f)); a CRL no CA signed is an error.
func (v *Verifier) readCRL(f string) (*crlFile, error) {
	st, err := stampOf(f)
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(f)
	if err != nil {
		return nil, err
	}
	data := raw
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	list, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f, err)
	}
	var signer *x509.Certificate
	for _, ca := range v.cas {
		if string(ca.RawSubject) == string(list.RawIssuer) && list.CheckSignatureFrom(ca) == nil {
			signer = ca
			break
		}
	}
	if signer == nil {
		return nil, fmt.Errorf("%s: the CRL is not signed by any CA in caFiles (issuer %s)", f, list.Issuer)
	}
	c := &crlFile{issuer: string(signer.RawSubject), nextUpdate: list.NextUpdate, stamp: st, sum: sha256.Sum256(raw)}
	for _, e := range list.RevokedCertificateEntries {
		c.revoked = append(c.revoked, e.SerialNumber.Text(16))
	}
	return c, nil
}

// swapCRLs makes the issuers' lists from the files as last read well and puts them in
// force; verdicts cached under the old lists are forgotten. v.reloadMu is held, or v is
// not shared yet.
func (v *Verifier) swapCRLs() {
	byIssuer := map[string]*crl{}
	for _, f := range v.cfg.CRLFiles {
		cf := v.files[f]
		if cf == nil {
			continue
		}
		c := byIssuer[cf.issuer]
		if c == nil {
			c = &crl{revoked: map[string]bool{}, nextUpdate: cf.nextUpdate, file: f}
			byIssuer[cf.issuer] = c
		}
		if cf.nextUpdate.Before(c.nextUpdate) {
			c.nextUpdate, c.file = cf.nextUpdate, f
		}
		for _, serial := range cf.revoked {
			c.revoked[serial] = true
		}
	}
	v.crls.Store(&byIssuer)
	v.mu.Lock()
	clear(v.cache)
	v.mu.Unlock()
}

// ReloadCRLs reads again the CRL files that changed since they were last read well (every
// one, with all). A file that no longer reads, parses or verifies keeps its last good list
// in force and is reported in the error; the others take effect at once.
func (v *Verifier) ReloadCRLs(all bool) (reloaded []string, err error) {
	v.reloadMu.Lock()
	defer v.reloadMu.Unlock()
	var errs []error
	for _, f := range v.cfg.CRLFiles {
		if st, serr := stampOf(f); serr == nil && !all && v.files[f] != nil && st == v.files[f].stamp {
			continue
		}
		c, rerr := v.readCRL(f)
		if rerr != nil {
			errs = append(errs, rerr)
			continue
		}
		old := v.files[f]
		v.files[f] = c
		if old == nil || old.sum != c.sum {
			reloaded = append(reloaded, f)
		}
	}
	if len(reloaded) > 0 {
		v.swapCRLs()
	}
	return reloaded, errors.Join(errs...)
}

// nextUpdate is the earliest nextUpdate of the lists in force (zero without any).
func (v *Verifier) nextUpdate() time.Time {
	var next time.Time
	for _, c := range *v.crls.Load() {
		next = minTime(next, c.nextUpdate)
	}
	return next
}

// RunCRLs follows the CRL files until ctx ends: every interval it reads again those that
// changed, and all of them from shortly before the earliest nextUpdate on (a renewed CRL
// may be put in place without changing the file's time and size). report hears of each
// reading: the files read again, and the error of those that kept their last good list.
func (v *Verifier) RunCRLs(ctx context.Context, interval time.Duration, report func(reloaded []string, err error)) {
	if len(v.cfg.CRLFiles) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next := v.nextUpdate()
		all := !next.IsZero() && v.now().Add(2*interval).After(next)
		reloaded, err := v.ReloadCRLs(all)
		if len(reloaded) > 0 || err != nil {
			report(reloaded, err)
		}
	}
}
