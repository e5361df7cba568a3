package main

import (
	"errors"
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

func openDB() (js.Value, error) {
	idb := js.Global().Get("indexedDB")
	if !idb.Truthy() {
		return js.Value{}, errors.New("keyless: IndexedDB unavailable")
	}
	return idbRequest(idb.Call("open", idbName, idbVersion), func(db js.Value) {
		if !db.Get("objectStoreNames").Call("contains", idbStore).Bool() {
			db.Call("createObjectStore", idbStore)
		}
	})
}

// loadOrCreateKey returns the stored key pair for name, creating and
// storing one if there is none. If IndexedDB is unavailable (some private
// modes), the key lives for this page only, and persisted is false.
func loadOrCreateKey(name string) (kp js.Value, persisted bool, err error) {
	db, dbErr := openDB()
	if dbErr == nil {
		defer db.Call("close")
		tx := db.Call("transaction", idbStore, "readonly")
		got, err := idbRequest(tx.Call("objectStore", idbStore).Call("get", name), nil)
		if err == nil && got.Truthy() && got.Get("privateKey").Truthy() {
			return got, true, nil
		}
	}
	kp, err = generateKeyPair()
	if err != nil {
		return js.Value{}, false, err
	}
	if dbErr != nil {
		return kp, false, nil
	}
	tx := db.Call("transaction", idbStore, "readwrite")
	record := map[string]any{"privateKey": kp.Get("privateKey"), "publicKey": kp.Get("publicKey")}
	if _, err := idbRequest(tx.Call("objectStore", idbStore).Call("put", record, name), nil); err != nil {
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
	tx := db.Call("transaction", idbStore, "readwrite")
	_, err = idbRequest(tx.Call("objectStore", idbStore).Call("delete", name), nil)
	return err
}
