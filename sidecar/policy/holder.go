package policy

import "sync/atomic"

// Holder keeps the policy in force for a running server and swaps it on
// [Holder.Reload] (e.g. on SIGHUP). A file that does not load leaves the
// policy in force unchanged: a typo never opens or closes everything.
// Safe for concurrent use; Get is what lease.Options.Policy wants.
type Holder struct {
	path string
	p    atomic.Pointer[Policy]
}

// NewHolder loads the policy at path (a policy file or a keyless config
// with a policy section).
func NewHolder(path string) (*Holder, error) {
	h := &Holder{path: path}
	if err := h.Reload(); err != nil {
		return nil, err
	}
	return h, nil
}

// Get returns the policy in force.
func (h *Holder) Get() *Policy { return h.p.Load() }

// Reload reads the file again; on error the policy in force stays.
func (h *Holder) Reload() error {
	p, err := Load(h.path)
	if err != nil {
		return err
	}
	h.p.Store(p)
	return nil
}
