// Types of the ES module keyless.js (@keyless/login). The WebAssembly
// client's API is in keyless-wasm.d.ts.
import type { KeylessAPI } from './keyless-wasm'

export type { KeylessAPI } from './keyless-wasm'

/** Boots the WebAssembly client once per page; resolves with its API. */
export function loadClient(wasmURL?: string | URL): Promise<KeylessAPI>

/**
 * Where keyless.wasm and wasm_exec.js are (a directory URL). Default: beside
 * keyless.js; set it when a bundler moves the module.
 */
export function setAssetsBase(url: string | URL): void

/** The <keyless-login> element (registered on import). */
export class KeylessLoginElement extends HTMLElement {
  static define(tag?: string, registry?: CustomElementRegistry): void
  /** The signed-in session, if any. */
  readonly session: unknown
  /** Starts the device flow (what the Sign in button does). */
  signIn(): Promise<void>
  /** Cancels a pending sign-in. */
  cancel(): void
  /** Revokes the lease and signs out; forget also deletes the DPoP key. */
  signOut(options?: { forget?: boolean }): Promise<void>
  /** fetch() with the lease and a fresh DPoP proof; only to the `api` origins. */
  fetch(url: string, init?: RequestInit): Promise<Response>
}

/** fetch() through the first signed-in <keyless-login> on the page. */
export function keylessFetch(url: string, init?: RequestInit): Promise<Response>

declare global {
  interface HTMLElementTagNameMap {
    'keyless-login': KeylessLoginElement
  }
  function keylessFetch(url: string, init?: RequestInit): Promise<Response>
}
