package main

import (
	"errors"
	"fmt"
	"syscall/js"
)

// newPromise returns a JS Promise settled by fn, which runs in its own
// goroutine: blocking inside a js.FuncOf callback would deadlock the page's
// event loop (syscall/js FuncOf doc). A panic in fn rejects the promise
// instead of killing the module.
func newPromise(fn func() (any, error)) js.Value {
	var executor js.Func
	executor = js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer executor.Release()
			defer func() {
				if r := recover(); r != nil {
					// A bug, not the user's problem: the page gets a plain
					// message and a code, never Go's panic text; the
					// details go to the console for whoever debugs.
					js.Global().Get("console").Call("error", "keyless: internal error:", fmt.Sprint(r))
					reject.Invoke(jsError("internal", "keyless: internal error; reload the page and try again"))
				}
			}()
			v, err := fn()
			if err != nil {
				reject.Invoke(toJSError(err))
				return
			}
			resolve.Invoke(v)
		}()
		return nil
	})
	return js.Global().Get("Promise").New(executor)
}

// await blocks the calling goroutine (never a callback) until p settles.
func await(p js.Value) (js.Value, error) {
	type result struct {
		v   js.Value
		err error
	}
	ch := make(chan result, 1)
	var onOK, onErr js.Func
	onOK = js.FuncOf(func(_ js.Value, args []js.Value) any {
		ch <- result{v: arg0(args)}
		return nil
	})
	onErr = js.FuncOf(func(_ js.Value, args []js.Value) any {
		e := arg0(args)
		msg := "rejected"
		if e.Truthy() {
			if m := e.Get("message"); m.Type() == js.TypeString {
				msg = m.String()
			} else {
				msg = e.Call("toString").String()
			}
		}
		ch <- result{err: errors.New(msg)}
		return nil
	})
	defer onOK.Release()
	defer onErr.Release()
	p.Call("then", onOK, onErr)
	r := <-ch
	return r.v, r.err
}

func arg0(args []js.Value) js.Value {
	if len(args) == 0 {
		return js.Undefined()
	}
	return args[0]
}

// jsError makes an Error with a stable code property (as panva/jose's
// errors carry one), for pages to branch on.
func jsError(code, msg string) js.Value {
	e := js.Global().Get("Error").New(msg)
	e.Set("code", code)
	return e
}
