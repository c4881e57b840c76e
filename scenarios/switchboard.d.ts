// Type declarations for switchboard scenarios.
//
// A scenario is an ES module whose default export holds handlers. Every
// scenario instance runs in its own JavaScript context (QuickJS) next to the
// media, with the limits the application configures: memory (16 MB by
// default), CPU per callback (1 s: `while (true) {}` is stopped), number of
// timers, and optionally wall time per call.
//
// In JavaScript, annotate the default export so editors complete the API and
// `tsc --checkJs` checks it:
//
//   /** @type {import('./switchboard').Scenario} */
//   export default {
//     async onCall(call, ctx) {
//       await call.answer();
//       const { digits } = await call.collectDigits({ prompt: 'Your room number?', max: 6 });
//       await call.routeTo(`conf_${digits}`);
//     },
//   };
//
// In TypeScript: `import type { Scenario } from './switchboard'` and
// `export default { ... } satisfies Scenario`.
//
// Modules: a scenario may import other modules of its own application,
// `import { helper } from './helpers.js'` (or './helpers'). Nothing else can
// be imported. Each instance has its own copy of every module's state.
//
// Failures: an uncaught exception, a rejected handler promise, an unhandled
// promise rejection, or a limit hit ends the instance: each of its calls is
// ended cleanly (rejected with 500 if not answered, else hung up) and the
// reason, with the JavaScript stack, goes to the calls' logs. Other instances
// never notice. A rejection with code `CALL_ENDED` (the caller hung up under
// the scenario) is logged but not treated as a failure.
//
// Lifetime: an instance ends when it has no calls left (hung up or routed
// away), even if JavaScript still awaits something then; an instance started
// with `onStart` also waits for `onStart` to settle. A call whose `onCall`
// has returned, with nothing pending that could act on it (no operation,
// collection, `dtmf` listener, timer, bridge, or conference), is ended: hung
// up if answered, else rejected with 480. A call placed with `dial` is kept
// while any handler of the instance runs, and under the same rules after.

/** The handlers a scenario exports as `export default { ... }`. */
export interface Scenario {
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
  /**
   * The scenario was started over the HTTP API (e.g. to place an outbound
   * call with `ctx.dial`); `ctx.customData` holds the request's data. The
   * instance ends once this has settled and it has no calls left.
   */
  onStart?(ctx: InstanceContext): void | Promise<void>;
}

/** Where an instance runs (`ctx` of `onConference` and `onStart`). */
export interface InstanceContext {
  /** The application. */
  readonly app: string;
  /** The rule that started the instance. */
  readonly rule: string;
  /** The destination the rule matched (empty for `onStart`). */
  readonly destination: string;
  /** JSON data given by the route or HTTP request that started it (`null` if none). */
  readonly customData: any;
  /**
   * Places an outbound SIP call; resolves with the call once it is answered
   * (it then belongs to this instance), rejects with a {@link DialError}.
   */
  dial(uri: string, options?: DialOptions): Promise<Call>;
}

/** `ctx` of `onCall`. */
export interface CallContext extends InstanceContext {
  /** The rule that routed this call here. */
  readonly rule: string;
  /** The destination this call was routed on. */
  readonly destination: string;
  /** `customData` given to `routeTo` (`null` if none). */
  readonly customData: any;
  /** In a conference instance: the instance's conference. */
  readonly conference?: Conference;
}

export type CallState = 'incoming' | 'ringing' | 'answered' | 'ended';

/** A DTMF key: `0`-`9`, `*`, `#`, `A`-`D`. */
export type DtmfDigit = string;

/** Extra SIP headers, by name (e.g. `{ 'X-Account': '42' }`). Headers the SIP stack writes (Via, From, To, Call-ID, CSeq, Contact, ...) are refused. */
export type SipHeaders = Record<string, string | number | boolean>;

export interface DtmfEvent {
  readonly digit: DtmfDigit;
  /** How it arrived: `rfc4733`, `info` or `inband`. */
  readonly source: string;
}

export interface HangupEvent {
  /** e.g. `remote-bye`, `cancelled`, `local`. */
  readonly reason: string;
}

/** `mediaEnded`: a `say` or `play` of the call ended (not when the call hung up). */
export interface MediaEndedEvent extends MediaResult {
  readonly kind: 'say' | 'play';
  /** What was said (`say`). */
  readonly text?: string;
  /** What was played (`play`). */
  readonly source?: string;
}

export interface SayOptions {
  /** Voice of the speech engine (e.g. an espeak-ng voice). */
  voice?: string;
  /** Language tag, e.g. `en`, `fr-FR`. */
  language?: string;
  /** Speaking rate multiplier, 0.1 to 10 (1 = normal). */
  rate?: number;
  /** Stop speaking at the first key the caller presses. Default false. */
  bargeIn?: boolean;
}

/**
 * What `play` plays:
 * - a WAV file of the application's media, by relative path (`hold.wav`,
 *   `music/hold.wav`; it cannot leave the media directory);
 * - a tone: `tone:FREQ[+FREQ...]/MS[,...]`, segments played in order, `0`
 *   for silence (`tone:440/1000`, `tone:350+440/2000,0/4000`), or a named
 *   cadence: `tone:ringback`, `tone:busy`, `tone:beep`;
 * - an `http://` or `https://` URL of a WAV file (fetched, decoded, cached).
 *
 * A malformed source throws a `TypeError` at once.
 */
export type PlaySource = string;

export interface PlayOptions {
  /** Start over at the end, until `stopMedia()` (or the call ends). */
  loop?: boolean;
  /** Stop at the first key the caller presses. Default false. */
  bargeIn?: boolean;
}

/** How a media operation ended. Media promises never reject because of a hangup. */
export interface MediaResult {
  /** True unless it played to the end. */
  readonly interrupted: boolean;
  /** `finished`; `interrupted` (barge-in, `stopMedia()`); `hangup` (the call ended). */
  readonly reason: 'finished' | 'interrupted' | 'hangup';
}

/**
 * Something `collectDigits` plays: text to say, `{say, voice, language,
 * rate}` (also `{text, ...}`), or `{play: source, loop}`.
 */
export type Prompt =
  | string
  | ({ say: string } & Omit<SayOptions, 'bargeIn'>)
  | ({ text: string } & Omit<SayOptions, 'bargeIn'>)
  | ({ play: PlaySource } & Omit<PlayOptions, 'bargeIn'>);

/**
 * Options of `collectDigits`, with the semantics of FreeSWITCH
 * `play_and_get_digits` and a Jambonz `gather`.
 *
 * Each attempt plays its prompts, then collects until a terminator, `max`
 * digits, or a timeout. Keys typed during a prompt always count (with
 * `bargeIn` they also stop it); keys typed before the collection started
 * count first (and, with `bargeIn`, skip its prompts). Then:
 * - a timeout with no digits retries (the prompt again) while retries are
 *   left, else resolves `timeout`;
 * - otherwise the digits must be at least `min` long and match `pattern`:
 *   valid digits resolve with the attempt's reason; invalid ones retry (the
 *   `invalidPrompt`, then the prompt) while retries are left, else resolve
 *   `invalid` with those digits.
 */
export interface CollectOptions {
  /** Played at the start of every attempt. */
  prompt?: Prompt;
  /** Played before the prompt when an attempt's digits were invalid. */
  invalidPrompt?: Prompt;
  /**
   * Fewest digits; a terminator pressed before that is ignored. Default 1;
   * 0 lets a lone terminator end with no digits.
   */
  min?: number;
  /** The attempt ends with reason `max` at this many digits. 1 to 128, default 128. */
  max?: number;
  /** Keys that end the attempt (not part of `digits`). Default `'#'`; `''` for none. */
  terminators?: string;
  /** Wait for the first key, counted from the end of the prompts. Default 5000. */
  firstDigitTimeoutMs?: number;
  /** Wait between keys. Default 3000. */
  interDigitTimeoutMs?: number;
  /**
   * The digits must match this regular expression as a whole (e.g. `'[12]'`,
   * `/^\d{4}$/`); the `g` and `y` flags are ignored.
   */
  pattern?: string | RegExp;
  /** Attempts after the first (0 to 20). Default 0. */
  retries?: number;
  /** Keys stop the prompts. Default true. */
  bargeIn?: boolean;
}

export interface CollectResult {
  /** The keys, without the terminator. */
  readonly digits: string;
  /**
   * `terminator`, `max`, `timeout` (no more keys; with no digits after every
   * retry, or enough digits when the time ran out), `hangup`, or `invalid`
   * (the last attempt's digits failed `min` or `pattern`).
   */
  readonly reason: 'terminator' | 'max' | 'timeout' | 'hangup' | 'invalid';
}

export interface RouteOptions {
  /** JSON data for the next scenario (`ctx.customData` there). */
  customData?: unknown;
}

export interface AnswerOptions {
  /** Extra headers on the 200 OK. */
  headers?: SipHeaders;
}

export interface HangupOptions {
  /** Extra headers on the BYE. */
  headers?: SipHeaders;
}

export interface DialOptions {
  /** From URI (default: the engine's). */
  from?: string;
  /** Extra headers on the INVITE. */
  headers?: SipHeaders;
  /** Give up (CANCEL, rejecting with 408) when not answered in time. 1 to 300000, default 60000. */
  timeoutMs?: number;
}

/** Why `dial` failed. */
export interface DialError extends Error {
  readonly name: 'DialError';
  /** The SIP status (486 busy, 404, 408 no answer in time, 487, 603, ...); 0 if no response came. */
  readonly code: number;
  /** The reason phrase. */
  readonly reason: string;
}

export interface RecordOptions {
  /** `'wav'` (the default and only format). */
  format?: 'wav';
  /** Calls: the caller and what it hears on two channels (default: one mixed channel). */
  stereo?: boolean;
  /** Conferences: also each participant (what it says) in a file of its own. */
  tracks?: boolean;
}

/** A recording in progress. */
export interface Recording {
  readonly id: string;
  /** Where the file is (engine-specific: a path or URL). */
  readonly location: string;
  /**
   * Stops recording. A recording also stops when its call or conference
   * ends; `stop()` then rejects (`CALL_ENDED`).
   */
  stop(): Promise<RecordingResult>;
}

export interface RecordingResult {
  readonly location: string;
  readonly durationMs: number;
  /** Per-participant files of a conference recording made with `tracks`. */
  readonly tracks: readonly string[];
}

/**
 * Errors from the API are `Error`s with a `code`:
 * - `CALL_ENDED`: the call has ended (also from `conf.add` when the caller
 *   hangs up while being added).
 * - `CALL_RELEASED`: the call was routed away; this object is inert.
 * - `INVALID_STATE`: not possible now (e.g. `reject` after `answer`).
 * - `BUSY`: a `collectDigits` already runs on the call.
 * - `MEDIA_ERROR`, `TTS_ERROR`, `CALL_ERROR`.
 * - `NO_ROUTE`, `ROUTE_FAILED` (`routeTo`).
 * - `FULL` (`conf.add` beyond `maxParticipants`), `CONFERENCE_ENDED`,
 *   `NO_SUCH_CALL`, `CONFERENCE_ERROR`.
 * - `NOT_ALLOWED`, `INVALID_REQUEST`, `TIMEOUT`, `TOO_LARGE`, `NETWORK_ERROR` (`fetch`).
 * `dial` rejects with a {@link DialError} (a numeric SIP `code`).
 * Wrong arguments throw a `TypeError` / `RangeError` right away.
 */
export interface SwitchboardError extends Error {
  readonly name: 'CallError' | 'ConferenceError' | 'RouteError' | 'FetchError';
  readonly code: string;
}

/** One call, as this instance controls it. */
export interface Call {
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
  /** `inbound` (it called us) or `outbound` (placed by `dial`). */
  readonly direction: 'inbound' | 'outbound';
  /** Live state. */
  readonly state: CallState;

  /** A header by name, any case; `undefined` if absent. */
  header(name: string): string | undefined;

  /** Answers (200 OK). Resolves at once if already answered. */
  answer(options?: AnswerOptions): Promise<void>;
  /** Sends 180 Ringing. */
  ring(): Promise<void>;
  /** Sends 183 Session Progress: `say`/`play` reach the caller before the answer. */
  earlyMedia(): Promise<void>;
  /** Rejects an unanswered call with a SIP status (300-699) and optional reason phrase. */
  reject(code: number, reason?: string): Promise<void>;
  /** Ends the call (BYE). Resolves at once if it already ended. */
  hangup(options?: HangupOptions): Promise<void>;

  /** Speaks `text` (TTS). Settles when it ends, is interrupted, or the call hangs up. */
  say(text: string, options?: SayOptions): Promise<MediaResult>;
  /** Plays a file, tone or URL (see {@link PlaySource}). Settles like `say`. */
  play(source: PlaySource, options?: PlayOptions): Promise<MediaResult>;
  /** Stops what `say`/`play` (or a collection's prompt) is playing. */
  stopMedia(): void;
  /**
   * Collects DTMF digits (see {@link CollectOptions}). Keys typed since the
   * last collection count first. Each key goes both to the `dtmf` listeners
   * and to the collection, exactly once. On an ended call it resolves
   * `{digits: '', reason: 'hangup'}`.
   */
  collectDigits(options?: CollectOptions): Promise<CollectResult>;
  /** Sends DTMF to the caller (RFC 4733): 1 to 64 keys. */
  sendDigits(digits: string): Promise<void>;
  /** Starts recording the call. */
  record(options?: RecordOptions): Promise<Recording>;

  /**
   * Places an outbound call (as `ctx.dial`); the new call belongs to this
   * instance once answered.
   */
  dial(uri: string, options?: DialOptions): Promise<Call>;
  /**
   * Connects this call's media with `other`'s, both ways (both answered and
   * controlled by this instance). When either hangs up, the bridge ends and
   * (if the scenario has nothing more to do with it) the other call is hung up.
   */
  bridge(other: Call): Promise<void>;
  /** Undoes `bridge`. Resolves at once when not bridged. */
  unbridge(): Promise<void>;

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
  /** A `say` or `play` ended. */
  on(event: 'mediaEnded', listener: (this: Call, event: MediaEndedEvent) => void): this;
  off(event: 'dtmf' | 'hangup' | 'mediaEnded', listener: (...args: any[]) => void): this;
}

export interface ParticipantOptions {
  /** Heard by nobody. */
  muted?: boolean;
  /** Hears nobody. */
  deaf?: boolean;
  /** Play a beep to the room on joining. */
  beep?: boolean;
}

/**
 * A participant of the conference. There is one object per participant (the
 * same in `add`, `participants`, `participant()` and events); `String(p)` is
 * its call id. Once it left, its state stays as last seen.
 */
export interface Participant {
  readonly callId: string;
  /** The call, when this instance controls it. */
  readonly call: Call | undefined;
  readonly muted: boolean;
  readonly deaf: boolean;
  /** Talking now (voice energy, with hangover: it does not flap). */
  readonly talking: boolean;
  /** Gain applied to what it says, in dB. */
  readonly gainDb: number;
  mute(): Promise<void>;
  unmute(): Promise<void>;
  deafen(): Promise<void>;
  undeafen(): Promise<void>;
  /** -60 to +24 dB. */
  setGain(db: number): Promise<void>;
  /** Removes it from the room and hangs up its call. */
  kick(): Promise<void>;
}

/** Room-wide options. */
export interface ConferenceOptions {
  /** `add` beyond this rejects with code `FULL`; `null`: no limit. */
  maxParticipants?: number | null;
  /** Played to a participant who is alone in the room; `null`: none. */
  waitMusic?: PlaySource | null;
}

/** The conference a conference instance owns (N-1 mixing). */
export interface Conference {
  readonly name: string;
  /** Participants now in the mix. */
  readonly size: number;
  /** The participants now in the mix. */
  readonly participants: Participant[];
  /** `add` beyond this rejects with code `FULL` (`null`: no limit). Settable. */
  maxParticipants: number | null;
  /** Played to a lone participant (`null`: none). Settable. */
  waitMusic: PlaySource | null;
  /** Sets several options at once (those not given stay). */
  configure(options: ConferenceOptions): void;
  /** A participant by call id, if in the room. */
  participant(callId: string): Participant | undefined;

  /** Puts a call this instance controls into the mix (it must be answered). */
  add(call: Call, options?: ParticipantOptions): Promise<Participant>;
  /** Speaks into the mix: every participant hears it. */
  say(text: string, options?: Omit<SayOptions, 'bargeIn'>): Promise<MediaResult>;
  /** Plays into the mix (see {@link PlaySource}). */
  play(source: PlaySource, options?: Omit<PlayOptions, 'bargeIn'>): Promise<MediaResult>;
  /** Stops what `say`/`play` plays into the mix. */
  stopMedia(): void;
  /** Starts recording the mix. */
  record(options?: RecordOptions): Promise<Recording>;
  /** Ends the conference: every participant is hung up. */
  end(): Promise<void>;

  /** A participant joined, left, started or stopped talking. */
  on(
    event: 'join' | 'leave' | 'talking' | 'silent',
    listener: (this: Conference, participant: Participant) => void,
  ): this;
  /** The last participant left. */
  on(event: 'empty', listener: (this: Conference) => void): this;
  off(event: 'join' | 'leave' | 'talking' | 'silent' | 'empty', listener: (...args: any[]) => void): this;
}

export interface FetchOptions {
  /** `GET` (default), `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE`, `OPTIONS`. */
  method?: string;
  /** Request headers (Host, Content-Length and other transport headers are refused). */
  headers?: Record<string, string | number | boolean>;
  /** A string body (`JSON.stringify` objects); not for GET/HEAD. */
  body?: string;
  /** Give up after this long: 1 to 60000, default 10000. */
  timeoutMs?: number;
}

export interface FetchHeaders {
  /** A header by name, any case; repeated headers joined with `", "`; `null` if absent. */
  get(name: string): string | null;
  has(name: string): boolean;
  /** `[lower-case name, value]` pairs. */
  entries(): [string, string][];
}

/** What `fetch` resolves with (HTTP error statuses resolve too; check `ok`). */
export interface FetchResponse {
  readonly status: number;
  /** `status` is 200-299. */
  readonly ok: boolean;
  readonly url: string;
  readonly headers: FetchHeaders;
  /** The body as text (UTF-8). */
  text(): Promise<string>;
  /** The body parsed as JSON (rejects with a `SyntaxError` if it is not). */
  json(): Promise<any>;
}

declare global {
  /** Lines of the call's log (with the call id when the instance has exactly one call). */
  const console: {
    log(...values: unknown[]): void;
    info(...values: unknown[]): void;
    warn(...values: unknown[]): void;
    error(...values: unknown[]): void;
    debug(...values: unknown[]): void;
  };

  /** Timers (at most `maxTimers` alive per instance; a string callback is refused). */
  function setTimeout<A extends unknown[]>(callback: (...args: A) => void, ms?: number, ...args: A): number;
  function setInterval<A extends unknown[]>(callback: (...args: A) => void, ms?: number, ...args: A): number;
  function clearTimeout(id: number | undefined): void;
  function clearInterval(id: number | undefined): void;

  /**
   * Outbound HTTP, to the hosts the application allows only. Rejects (a
   * `FetchError` with a `code`) when the request could not be made; HTTP
   * error statuses resolve.
   */
  function fetch(url: string, options?: FetchOptions): Promise<FetchResponse>;
}
