// The browser's audio for voice rooms (SPEC.md VR8): the microphone (getUserMedia), every member's audio
// played by an <audio> element, and speaking levels measured with WebAudio AnalyserNodes where the audio is
// heard. The client core decides who is called and when; this file only does what a browser does with sound.
import type { VoiceMedia } from '../../shared/client/voice/VoiceController';

/** RMS over the analyser's window above which a member counts as speaking (the fake mic's beep is ~0.3). */
export const SPEAKING_RMS = 0.02;
/** A member stays "speaking" this long after the level fell below SPEAKING_RMS: no flicker between words. */
export const SPEAKING_HOLD_MS = 250;
/** How often levels are read; 50 ms is what a ring needs to look live. */
const LEVEL_EVERY_MS = 50;
/** The analysed window: 2048 samples at 48 kHz is ~43 ms, about one read interval. */
const FFT_SIZE = 2048;
/** The key of our own microphone in `levels`. */
export const SELF = 'self';

export interface Level {
  readonly rms: number;
  readonly speaking: boolean;
}

interface Meter {
  analyser: AnalyserNode;
  source: MediaStreamAudioSourceNode;
  lastLoudAt: number;
  /** Remote audio only: what plays it (and what makes Chromium's analyser read anything at all). */
  audio: HTMLAudioElement | null;
  stream: MediaStream;
  /**
   * Remote audio only: the RTP receiver, whose packets carry the sender's level (RFC 6464). Read when the
   * AudioContext is not running: Firefox on a machine without an audio output device never starts one
   * (it stays "suspended", resume() never settles), so its analysers read silence.
   */
  receiver: RTCRtpReceiver | null;
}

export interface BrowserVoiceMedia extends VoiceMedia {
  /** Levels by peerId (and SELF); a new object whenever a `speaking` flag or a rounded level changes. */
  getLevels(): Readonly<Record<string, Level>>;
  subscribeLevels(cb: () => void): () => void;
  /** The microphones the browser lists (labels appear once permission was given). */
  listMicrophones(): Promise<{ deviceId: string; label: string }[]>;
}

export function createBrowserVoiceMedia(): BrowserVoiceMedia {
  let ctx: AudioContext | null = null;
  const meters = new Map<string, Meter>();
  const buf = new Float32Array(FFT_SIZE);
  let levels: Record<string, Level> = {};
  const listeners = new Set<() => void>();
  let timer: ReturnType<typeof setInterval> | null = null;
  let deafened = false;

  const audioContext = (): AudioContext => {
    ctx ??= new AudioContext();
    // Joining is a click, so a suspended context (autoplay policy) may resume now.
    if (ctx.state === 'suspended') void ctx.resume().catch(() => {});
    return ctx;
  };

  const read = (): void => {
    const now = performance.now();
    const next: Record<string, Level> = {};
    let changed = false;
    for (const [id, m] of meters) {
      const rms = ctx?.state !== 'running' && m.receiver ? rtpLevel(m.receiver) : analyserRms(m.analyser, buf);
      if (rms > SPEAKING_RMS) m.lastLoudAt = now;
      const speaking = now - m.lastLoudAt < SPEAKING_HOLD_MS;
      const rounded = Math.round(rms * 1000) / 1000;
      const prev = levels[id];
      next[id] = { rms: rounded, speaking };
      if (!prev || prev.speaking !== speaking || prev.rms !== rounded) changed = true;
    }
    if (Object.keys(levels).length !== meters.size) changed = true;
    if (!changed) return;
    levels = next;
    for (const l of [...listeners]) {
      try {
        l();
      } catch {
        // a view's failure stays its own
      }
    }
  };

  const meter = (id: string, stream: MediaStream, audio: HTMLAudioElement | null, receiver: RTCRtpReceiver | null = null): void => {
    unmeter(id);
    const c = audioContext();
    const source = c.createMediaStreamSource(stream);
    const analyser = c.createAnalyser();
    analyser.fftSize = FFT_SIZE;
    source.connect(analyser); // not to the destination: the <audio> element plays it
    meters.set(id, { analyser, source, lastLoudAt: -Infinity, audio, stream, receiver });
    timer ??= setInterval(read, LEVEL_EVERY_MS);
  };

  const unmeter = (id: string): void => {
    const m = meters.get(id);
    if (!m) return;
    meters.delete(id);
    m.source.disconnect();
    if (m.audio) {
      m.audio.pause();
      m.audio.srcObject = null;
      m.audio.remove();
    }
    if (meters.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
    read();
  };

  return {
    async openMicrophone(deviceId) {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: deviceId ? { deviceId: { exact: deviceId }, echoCancellation: true, noiseSuppression: true } : { echoCancellation: true, noiseSuppression: true },
        video: false,
      });
      meter(SELF, stream, null);
      return stream;
    },
    closeMicrophone(stream) {
      for (const t of stream.getTracks()) t.stop();
      // Only this stream's meter: after a microphone switch the new one is already measured.
      if (meters.get(SELF)?.stream === stream) unmeter(SELF);
    },
    setMicrophoneEnabled(stream, enabled) {
      for (const t of stream.getAudioTracks()) t.enabled = enabled;
    },
    addRemote(peerId, stream, receiver) {
      if (meters.get(peerId)?.stream === stream) return;
      const audio = document.createElement('audio');
      audio.autoplay = true;
      audio.muted = deafened;
      audio.srcObject = stream;
      audio.dataset.voicePeer = peerId;
      audio.hidden = true;
      document.body.append(audio);
      void audio.play().catch(() => {});
      meter(peerId, stream, audio, receiver ?? null);
    },
    removeRemote(peerId) {
      unmeter(peerId);
    },
    setDeafened(d) {
      deafened = d;
      // Still playing, only silent: the analysers keep measuring, so rings still show who speaks.
      for (const m of meters.values()) if (m.audio) m.audio.muted = d;
    },
    getLevels: () => levels,
    subscribeLevels(cb) {
      listeners.add(cb);
      return () => listeners.delete(cb);
    },
    async listMicrophones() {
      try {
        const all = await navigator.mediaDevices.enumerateDevices();
        return all.filter((d) => d.kind === 'audioinput').map((d, i) => ({ deviceId: d.deviceId, label: d.label || `Microphone ${i + 1}` }));
      } catch {
        return [];
      }
    },
  };
}

function analyserRms(analyser: AnalyserNode, buf: Float32Array<ArrayBuffer>): number {
  analyser.getFloatTimeDomainData(buf);
  let sum = 0;
  for (const x of buf) sum += x * x;
  return Math.sqrt(sum / buf.length);
}

/** The RTP timestamp of the newest packet each receiver's level was read from. */
const lastRtp = new WeakMap<RTCRtpReceiver, number>();

/**
 * The newest packet's level (0..1, linear like an RMS); 0 when no packet arrived since the last read (the
 * browser keeps a source's last entry for 10 s after it fell silent).
 */
function rtpLevel(receiver: RTCRtpReceiver): number {
  const [s] = receiver.getSynchronizationSources();
  if (!s || lastRtp.get(receiver) === s.rtpTimestamp) return 0;
  lastRtp.set(receiver, s.rtpTimestamp);
  return s.audioLevel ?? 0;
}
