package main

import (
	"errors"
	"sync"
	"syscall/js"
)

// bridge calls the asynchronous helpers of worker.mjs (keylessEdge.*) and
// waits for their outcome. Every value that crosses syscall/js as a
// string, object or function becomes a Go js.Value with a finalizer
// (runtime.SetFinalizer), and those dominated the Worker's CPU profile in
// workerd. So a helper takes plain strings and numbers plus a call id,
// and reports through one callback installed once per isolate,
// keylessEdge.settled(id, ok, value), instead of a Promise and two
// js.FuncOf per wait.
type bridge struct {
	lib     js.Value
	mu      sync.Mutex
	next    int
	waiting map[int]chan settled
}

type settled struct {
	v   js.Value
	err error
}

func newBridge(lib js.Value) *bridge {
	b := &bridge{lib: lib, waiting: map[int]chan settled{}}
	// Never released: it serves the isolate's life.
	lib.Set("settled", js.FuncOf(func(_ js.Value, args []js.Value) any {
		id := args[0].Int()
		b.mu.Lock()
		ch := b.waiting[id]
		delete(b.waiting, id)
		b.mu.Unlock()
		if ch == nil {
			return nil
		}
		if args[1].Bool() {
			ch <- settled{v: args[2]}
		} else {
			ch <- settled{err: errors.New(args[2].String())}
		}
		return nil
	}))
	return b
}

// call runs keylessEdge[fn](args..., id) and blocks the calling goroutine
// until the helper settles id. Never call it on the goroutine running a
// js.FuncOf callback (that deadlocks): requests run on their own
// goroutine (see serve in main).
func (b *bridge) call(fn string, args ...any) (js.Value, error) {
	ch := make(chan settled, 1)
	b.mu.Lock()
	b.next++
	id := b.next
	b.waiting[id] = ch
	b.mu.Unlock()
	b.lib.Call(fn, append(args, id)...)
	r := <-ch
	return r.v, r.err
}
