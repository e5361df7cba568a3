// Types of the object the Go client (keyless.wasm) installs as
// globalThis.keyless. web-component/keyless.js is its only intended caller.

export interface LoginState {
  status: 'starting' | 'code' | 'pending' | 'slow_down' | 'approved'
  userCode?: string
  verificationUri?: string
  verificationUriComplete?: string
  /** data: URL of an SVG QR code of verificationUriComplete */
  qr?: string
  expiresIn?: number
  secondsLeft?: number
}

export interface LoginEvent {
  type: 'renewed' | 'renewal_failed'
  expiresAt?: number
  code?: string
  message?: string
}

export interface Session {
  subject: string
  scope: string
  /** milliseconds since the epoch */
  expiresAt: number
  /** RFC 7638 thumbprint of the DPoP key the lease is bound to */
  jkt: string
  preview: boolean
  /** false when IndexedDB was unavailable and the key lives for this page only */
  keyPersistent: boolean
  /** true when resumed from a renewal token an earlier load kept (restore) */
  restored: boolean
}

export interface KeylessAPI {
  version: string
  login(options: {
    issuer: string
    clientId: string
    /** space-separated scopes */
    scope?: string
    /** space-separated origins the lease may be sent to */
    api: string
    /** keep the renewal token in IndexedDB beside the key (default true) */
    persist?: boolean
    /** keyless's URL: issuer is then an external OpenID Provider whose token is exchanged here */
    vending?: string
    /** space-separated scopes asked of the external IdP (default "openid") */
    idpScope?: string
    onState?: (s: LoginState) => void
    onEvent?: (e: LoginEvent) => void
  }): Promise<Session>
  /** resumes a kept session without a new approval; null when there is none */
  restore(options: { issuer: string; clientId: string; scope?: string; api: string; persist?: boolean;
    onEvent?: (e: LoginEvent) => void }): Promise<Session | null>
  fetch(url: string, init?: { method?: string; headers?: HeadersInit; body?: string | ArrayBuffer | Uint8Array }):
    Promise<{ status: number; headers: Record<string, string>; body: Uint8Array }>
  logout(options?: { forget?: boolean }): Promise<void>
  cancel(): void
}

/** Errors rejected by the API carry a stable code. */
export interface KeylessError extends Error {
  code: 'invalid_argument' | 'access_denied' | 'expired_token' | 'not_dpop_bound' | 'not_bearer' | 'idp_cors' | 'origin_not_allowed' |
    'not_signed_in' | 'cancelled' | 'internal' | 'storage_unavailable' | 'error' | string
}
