package main

import (
	"errors"
	"fmt"
	"syscall/js"
)

// The DPoP key pair is kept in IndexedDB as CryptoKey objects (structured
// clone keeps them non-extractable), so a reload keeps the same key and the
// same token binding. Tokens are never stored: they live in Go memory only.
const (
	idbName    = "keyless"
	idbStore   = "keys"
	idbVersion = 1
)

// idbRequest waits for an IDBRequest (or IDBOpenDBRequest) to finish.
func idbRequest(req js.Value, upgrade func(db js.Value)) (js.Value, error) {
	p := js.Global().Get("Promise").New(js.FuncOf(func(_ js.Value, args []js.Value) any {
		resolve, reject := args[0], args[1]
		var onOK, onErr, onUp js.Func
		release := func() {
			onOK.Release()
			onErr.Release()
			if upgrade != nil {
				onUp.Release()
			}
		}
		onOK = js.FuncOf(func(js.Value, []js.Value) any {
			resolve.Invoke(req.Get("result"))
			release()
			return nil
		})
		onErr = js.FuncOf(func(js.Value, []js.Value) any {
			reject.Invoke(req.Get("error"))
			release()
			return nil
		})
		req.Set("onsuccess", onOK)
		req.Set("onerror", onErr)
		if upgrade != nil {
			onUp = js.FuncOf(func(js.Value, []js.Value) any {
				upgrade(req.Get("result"))
				return nil
			})
			req.Set("onupgradeneeded", onUp)
		}
		return nil
	}))
	return await(p)
}

// errStorageUnavailable: the page may not use IndexedDB. An iframe
// sandboxed without allow-same-origin has an opaque origin, where
// indexedDB.open throws a SecurityError; some private modes have no
// IndexedDB at all. The key then lives in memory for the page's life.
var errStorageUnavailable = errors.New("keyless: this page cannot store a key (IndexedDB is unavailable here, e.g. in an iframe sandboxed without allow-same-origin)")

// call is v.Call that returns a JavaScript exception as an error instead
// of panicking: IndexedDB throws synchronously (SecurityError,
// InvalidStateError) and its text must never reach the page as a Go panic.
func call(v js.Value, method string, args ...any) (r js.Value, err error) {
	defer func() {
		if p := recover(); p != nil {
			if je, ok := p.(js.Error); ok {
				err = fmt.Errorf("%w: %s", errStorageUnavailable, je.Get("name").String())
				return
			}
			panic(p)
		}
	}()
	return v.Call(method, args...), nil
}

func openDB() (js.Value, error) {
	idb := js.Global().Get("indexedDB")
	if !idb.Truthy() {
		return js.Value{}, errStorageUnavailable
	}
	req, err := call(idb, "open", idbName, idbVersion)
	if err != nil {
		return js.Value{}, err
	}
	db, err := idbRequest(req, func(db js.Value) {
		if !db.Get("objectStoreNames").Call("contains", idbStore).Bool() {
			db.Call("createObjectStore", idbStore)
		}
	})
	if err != nil {
		return js.Value{}, fmt.Errorf("%w: %v", errStorageUnavailable, err)
	}
	return db, nil
}

// store returns the key store of db in a new transaction.
func store(db js.Value, mode string) (js.Value, error) {
	tx, err := call(db, "transaction", idbStore, mode)
	if err != nil {
		return js.Value{}, err
	}
	return call(tx, "objectStore", idbStore)
}

// loadOrCreateKey returns the stored key pair for name, creating and
// storing one if there is none. If IndexedDB is unavailable (some private
// modes), the key lives for this page only, and persisted is false.
func loadOrCreateKey(name string) (kp js.Value, persisted bool, err error) {
	db, dbErr := openDB()
	if dbErr == nil {
		defer db.Call("close")
		if st, err := store(db, "readonly"); err == nil {
			if req, err := call(st, "get", name); err == nil {
				got, err := idbRequest(req, nil)
				if err == nil && got.Truthy() && got.Get("privateKey").Truthy() {
					return got, true, nil
				}
			}
		}
	}
	kp, err = generateKeyPair()
	if err != nil {
		return js.Value{}, false, err
	}
	if dbErr != nil {
		return kp, false, nil
	}
	st, err := store(db, "readwrite")
	if err != nil {
		return kp, false, nil
	}
	record := map[string]any{"privateKey": kp.Get("privateKey"), "publicKey": kp.Get("publicKey")}
	req, err := call(st, "put", record, name)
	if err != nil {
		return kp, false, nil
	}
	if _, err := idbRequest(req, nil); err != nil {
		return kp, false, nil
	}
	return kp, true, nil
}

// deleteKey removes the stored key pair (logout with forget).
func deleteKey(name string) error {
	db, err := openDB()
	if err != nil {
		return err
	}
	defer db.Call("close")
	st, err := store(db, "readwrite")
	if err != nil {
		return err
	}
	req, err := call(st, "delete", name)
	if err != nil {
		return err
	}
	_, err = idbRequest(req, nil)
	return err
}

// The renewal token of a session, when the page keeps sessions across
// reloads, sits in the same store beside the key it is bound to: the
// server accepts it only with a DPoP proof of that key, which cannot be
// exported, so the stored token is useless anywhere else.
func renewalName(keyName string) string { return "renewal|" + keyName }

// loadKey returns the stored key pair for name without creating one.
func loadKey(name string) (js.Value, bool) {
	db, err := openDB()
	if err != nil {
		return js.Value{}, false
	}
	defer db.Call("close")
	got, err := getRecord(db, name)
	if err != nil || !got.Truthy() || !got.Get("privateKey").Truthy() {
		return js.Value{}, false
	}
	return got, true
}

func getRecord(db js.Value, name string) (js.Value, error) {
	st, err := store(db, "readonly")
	if err != nil {
		return js.Value{}, err
	}
	req, err := call(st, "get", name)
	if err != nil {
		return js.Value{}, err
	}
	return idbRequest(req, nil)
}

// saveRenewal stores (or, with an empty token, deletes) the renewal token
// kept for keyName.
func saveRenewal(keyName, token string) error {
	db, err := openDB()
	if err != nil {
		return err
	}
	defer db.Call("close")
	st, err := store(db, "readwrite")
	if err != nil {
		return err
	}
	var req js.Value
	if token == "" {
		req, err = call(st, "delete", renewalName(keyName))
	} else {
		req, err = call(st, "put", token, renewalName(keyName))
	}
	if err != nil {
		return err
	}
	_, err = idbRequest(req, nil)
	return err
}

// loadRenewal returns the renewal token kept for keyName, or "".
func loadRenewal(keyName string) string {
	db, err := openDB()
	if err != nil {
		return ""
	}
	defer db.Call("close")
	got, err := getRecord(db, renewalName(keyName))
	if err != nil || got.Type() != js.TypeString {
		return ""
	}
	return got.String()
}
