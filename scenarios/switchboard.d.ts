// Type declarations for switchboard scenarios (compile with `lib: ["es2020"]`,
// without the DOM library, whose `console` and timers differ).
//
// A scenario is an ES module whose default export holds handlers. Every
// scenario instance runs in its own JavaScript context (QuickJS) next to the
// media, with the limits the application configures (memory, CPU per
// callback, number of timers).
//
//   /// <reference path="switchboard.d.ts" />
//   export default {
//     async onCall(call, ctx) {
//       await call.answer();
//       const { digits } = await call.collectDigits({ prompt: 'Your room number?', max: 6 });
//       await call.routeTo(`conf_${digits}`);
//     },
//   } satisfies Scenario;
//
// Failures: an uncaught exception, a rejected handler promise, an unhandled
// promise rejection, or a limit hit ends the instance: each of its calls is
// ended cleanly (rejected with 500 if not answered, else hung up) and the
// reason, with the JavaScript stack, goes to the calls' logs. Other instances
// never notice. A rejection with code `CALL_ENDED` (the caller hung up under
// the scenario) is logged but not treated as a failure.
//
// Lifetime: an instance ends when it has no calls left (hung up or routed
// away), even if JavaScript still awaits something then. A call whose
// `onCall` has returned, with nothing pending that could act on it (no
// operation, collection, `dtmf` listener, timer, or conference), is ended:
// hung up if answered, else rejected with 480.

/** The handlers a scenario exports as `export default { ... }`. */
interface Scenario {
  /**
   * A call was routed to this instance. `this` is the default export.
   * Runs after `onConference` (conference instances) has settled.
   */
  onCall?(call: Call, ctx: CallContext): void | Promise<void>;
  /**
   * Conference rules only: runs once, before the first `onCall`, when the
   * instance (one per destination) starts. `onCall` waits for it to settle.
   */
  onConference?(conf: Conference, ctx: InstanceContext): void | Promise<void>;
  /** (Coming next) The scenario was started over the HTTP API. */
  onStart?(ctx: InstanceContext): void | Promise<void>;
}

/** Where an instance runs. */
interface InstanceContext {
  /** The application. */
  readonly app: string;
  /** The rule that started the instance. */
  readonly rule: string;
  /** The destination the rule matched. */
  readonly destination: string;
  /** Data given by the route or HTTP request that started it (`null` if none). */
  readonly customData: unknown;
}

/** `ctx` of `onCall`. */
interface CallContext extends InstanceContext {
  /** The rule that routed this call here. */
  readonly rule: string;
  /** The destination this call was routed on. */
  readonly destination: string;
  /** `customData` given to `routeTo` (`null` if none). */
  readonly customData: unknown;
  /** In a conference instance: the instance's conference. */
  readonly conference?: Conference;
}

type CallState = 'incoming' | 'ringing' | 'answered' | 'ended';

/** A DTMF key: `0`-`9`, `*`, `#`, `A`-`D`. */
type DtmfDigit = string;

interface DtmfEvent {
  readonly digit: DtmfDigit;
  /** How it arrived: `rfc4733`, `info` or `inband`. */
  readonly source: string;
}

interface HangupEvent {
  /** e.g. `remote-bye`, `cancelled`, `local`. */
  readonly reason: string;
}

interface SayOptions {
  /** Voice of the speech engine (e.g. an espeak-ng voice). */
  voice?: string;
  /** Language tag, e.g. `en`, `fr-FR`. */
  language?: string;
  /** Speaking rate multiplier, 0.1 to 10 (1 = normal). */
  rate?: number;
  /** Stop speaking at the first key the caller presses. Default false for `say`. */
  bargeIn?: boolean;
}

/** How a media operation ended. Media promises never reject because of a hangup. */
interface MediaResult {
  /** True unless it played to the end. */
  readonly interrupted: boolean;
  /** `finished`; `interrupted` (barge-in, `stopMedia()`); `hangup` (the call ended). */
  readonly reason: 'finished' | 'interrupted' | 'hangup';
}

interface CollectOptions {
  /**
   * Spoken first (string, or text with voice options). With `bargeIn`, the
   * first key stops it, and keys typed ahead (before `collectDigits` was
   * called) skip it altogether.
   */
  prompt?: string | ({ text: string } & Omit<SayOptions, 'bargeIn'>);
  /**
   * Fewest digits; a terminator pressed before that is ignored. Default 1;
   * 0 lets a lone terminator end with no digits.
   */
  min?: number;
  /** Collection ends with reason `max` at this many digits. 1 to 128, default 128. */
  max?: number;
  /** Keys that end the collection (not part of `digits`). Default `'#'`; `''` for none. */
  terminators?: string;
  /** Wait for the first key, counted from the end of the prompt. Default 5000. */
  firstDigitTimeoutMs?: number;
  /** Wait between keys. Default 3000. */
  interDigitTimeoutMs?: number;
  /** The prompt stops at the first key. Default true. */
  bargeIn?: boolean;
}

interface CollectResult {
  /** The keys, without the terminator. */
  readonly digits: string;
  readonly reason: 'terminator' | 'max' | 'timeout' | 'hangup';
}

interface RouteOptions {
  /** JSON data for the next scenario (`ctx.customData` there). */
  customData?: unknown;
}

/**
 * Errors from the API are `Error`s with a `code`:
 * - `CALL_ENDED`: the call has ended.
 * - `CALL_RELEASED`: the call was routed away; this object is inert.
 * - `INVALID_STATE`: not possible now (e.g. `reject` after `answer`).
 * - `BUSY`: a `collectDigits` already runs on the call.
 * - `MEDIA_ERROR`, `TTS_ERROR`, `CALL_ERROR`.
 * - `NO_ROUTE`, `ROUTE_FAILED` (`routeTo`).
 * - `CONFERENCE_FULL`, `CONFERENCE_ENDED`, `NO_SUCH_CALL`, `CONFERENCE_ERROR`.
 * Wrong arguments throw a `TypeError` / `RangeError` right away.
 */
interface SwitchboardError extends Error {
  readonly name: 'CallError' | 'ConferenceError' | 'RouteError';
  readonly code: string;
}

/** One call, as this instance controls it. */
interface Call {
  readonly id: string;
  /** From URI. */
  readonly from: string;
  /** To URI. */
  readonly to: string;
  /** What the call was routed on (Request-URI user part, or a `routeTo` target). */
  readonly destination: string;
  /**
   * INVITE headers by lower-case name (`call.headers['x-room']`); a header
   * that repeats has its values joined with `", "`.
   */
  readonly headers: Readonly<Record<string, string>>;
  /** `udp`, `tcp`, `ws`, or `sim`. */
  readonly transport: string;
  /** Live state. */
  readonly state: CallState;

  /** A header by name, any case; `undefined` if absent. */
  header(name: string): string | undefined;

  /** Answers (200 OK). Resolves at once if already answered. */
  answer(): Promise<void>;
  /** Rejects an unanswered call with a SIP status (300-699) and optional reason phrase. */
  reject(code: number, reason?: string): Promise<void>;
  /** Ends the call. Resolves at once if it already ended. */
  hangup(): Promise<void>;

  /** Speaks `text` (TTS). Settles when it ends, is interrupted, or the call hangs up. */
  say(text: string, options?: SayOptions): Promise<MediaResult>;
  /** Stops what `say` (or a collection's prompt) is playing. */
  stopMedia(): void;
  /**
   * Collects DTMF digits. Keys typed since the last collection count first.
   * Each key goes both to the `dtmf` listeners and to the collection,
   * exactly once. On an ended call it resolves `{digits: '', reason: 'hangup'}`.
   */
  collectDigits(options?: CollectOptions): Promise<CollectResult>;

  /**
   * Hands the call to `destination` in this application (the rules pick the
   * instance). This instance stops controlling it once the promise resolves;
   * afterwards its methods reject with `CALL_RELEASED`. If routing fails
   * (`NO_ROUTE`, `ROUTE_FAILED`), the call stays here.
   */
  routeTo(destination: string, options?: RouteOptions): Promise<void>;

  /** A key was pressed. */
  on(event: 'dtmf', listener: (this: Call, event: DtmfEvent) => void): this;
  /** The call ended (then the call's pending promises have settled). */
  on(event: 'hangup', listener: (this: Call, event: HangupEvent) => void): this;
  off(event: 'dtmf' | 'hangup', listener: (...args: any[]) => void): this;
}

interface ParticipantOptions {
  /** Heard by nobody. */
  muted?: boolean;
  /** Hears nobody. */
  deaf?: boolean;
  /** Play a beep to the room on joining. */
  beep?: boolean;
}

interface ParticipantEvent {
  readonly callId: string;
  /** The call object when this instance controls the call. */
  readonly call?: Call;
}

/** The conference a conference instance owns (N-1 mixing). */
interface Conference {
  readonly name: string;
  /** Participants now in the mix. */
  readonly size: number;
  /** Call ids of the participants. */
  readonly participants: string[];

  /** Puts a call this instance controls into the mix (it must be answered). */
  add(call: Call, options?: ParticipantOptions): Promise<void>;
  /** Speaks into the mix: every participant hears it. */
  say(text: string, options?: Omit<SayOptions, 'bargeIn'>): Promise<MediaResult>;
  /** Ends the conference: every participant is hung up. */
  end(): Promise<void>;

  on(event: 'join' | 'leave', listener: (this: Conference, event: ParticipantEvent) => void): this;
  /** The last participant left. */
  on(event: 'empty', listener: (this: Conference) => void): this;
  off(event: 'join' | 'leave' | 'empty', listener: (...args: any[]) => void): this;
}

/** Lines of the call's log (with the call id when the instance has exactly one call). */
declare const console: {
  log(...values: unknown[]): void;
  info(...values: unknown[]): void;
  warn(...values: unknown[]): void;
  error(...values: unknown[]): void;
  debug(...values: unknown[]): void;
};

/** Timers (at most `maxTimers` alive per instance; a string callback is refused). */
declare function setTimeout<A extends unknown[]>(callback: (...args: A) => void, ms?: number, ...args: A): number;
declare function setInterval<A extends unknown[]>(callback: (...args: A) => void, ms?: number, ...args: A): number;
declare function clearTimeout(id: number | undefined): void;
declare function clearInterval(id: number | undefined): void;
