// A WebSocket client for bench:relay's storm clients: RFC 6455 over a plain TCP socket, text frames only,
// what the relay's sockets need and no more (no extensions, no subprotocols; pings answered).
//
// The `ws` library's client opens each socket through Node's HTTP client (a ClientRequest, an HTTP parser
// for the 101): in the storm that was ~20% of the client processes' CPU, on the same two cores as the
// relay they measure. The relay sees the same bytes a browser or `ws` would send: the upgrade request,
// masked client frames, pongs.
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** Masks for client frames, drawn from one random pool (RFC 6455 5.3: a fresh unpredictable key per frame). */
const maskPool = Buffer.alloc(4096);
let maskAt = maskPool.length;
function nextMask(): Buffer {
  if (maskAt + 4 > maskPool.length) {
    randomFillSync(maskPool);
    maskAt = 0;
  }
  maskAt += 4;
  return maskPool.subarray(maskAt - 4, maskAt);
}

/** Bytes a server may send before its 101 response ends: far more than the relay's few headers. */
const MAX_HANDSHAKE_BYTES = 16 * 1024;

export interface LeanWebSocketEvents {
  message: [data: Buffer];
  close: [code: number, reason: string];
  error: [err: Error];
}

export class LeanWebSocket extends EventEmitter<LeanWebSocketEvents> {
  readyState = CONNECTING;
  private buffered: Buffer | null = null;
  private fragments: Buffer[] = [];

  private constructor(private readonly socket: import('node:net').Socket) {
    super();
  }

  /**
   * Opens `url` (ws://host:port/path?query) from `localAddress`; resolves once the server answered 101.
   * `onMessage` listens from the start: a server may send its first frame in the same read as the 101.
   */
  static connect(url: string, localAddress: string | undefined, onMessage: (data: Buffer) => void): Promise<LeanWebSocket> {
    const u = new URL(url);
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    const socket = connect({ host: u.hostname, port: Number(u.port), localAddress });
    socket.setNoDelay(true);
    const ws = new LeanWebSocket(socket);
    ws.on('message', onMessage);
    return new Promise((resolve, reject) => {
      let head = Buffer.alloc(0);
      const fail = (err: Error) => {
        socket.destroy();
        reject(err);
      };
      const onHandshake = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_HANDSHAKE_BYTES) fail(new Error('handshake response too long'));
          return;
        }
        socket.off('data', onHandshake);
        const lines = head.subarray(0, end).toString('latin1').split('\r\n');
        if (!/^HTTP\/1\.1 101 /.test(lines[0]!)) return fail(new Error(`upgrade refused: ${lines[0]}`));
        const got = lines.find((l) => /^sec-websocket-accept:/i.test(l))?.split(':')[1]?.trim();
        if (got !== accept) return fail(new Error('bad Sec-WebSocket-Accept'));
        socket.off('error', fail);
        ws.readyState = OPEN;
        socket.on('data', (d: Buffer) => ws.onData(d));
        socket.on('error', (err) => ws.emit('error', err));
        socket.on('close', () => ws.onClose(1006, ''));
        resolve(ws);
        // A frame that came in the same read as the 101 (the signalling server's OPEN does).
        if (head.length > end + 4) ws.onData(head.subarray(end + 4));
      };
      socket.on('data', onHandshake);
      socket.on('error', fail);
      socket.once('close', () => reject(new Error('closed during the handshake')));
      socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  /** Sends `text` as one masked text frame. */
  send(text: string): void {
    this.sendFrame(0x1, Buffer.from(text));
  }

  /** Destroys the socket without a close frame (what `ws`'s terminate() does). */
  terminate(): void {
    this.socket.destroy();
  }

  private sendFrame(opcode: number, payload: Buffer): void {
    if (this.readyState !== OPEN) return;
    const n = payload.length;
    const lenBytes = n < 126 ? 0 : n < 65536 ? 2 : 8;
    const frame = Buffer.allocUnsafe(2 + lenBytes + 4 + n);
    frame[0] = 0x80 | opcode; // FIN: never fragmented
    frame[1] = 0x80 | (lenBytes === 0 ? n : lenBytes === 2 ? 126 : 127);
    if (lenBytes === 2) frame.writeUInt16BE(n, 2);
    else if (lenBytes === 8) frame.writeBigUInt64BE(BigInt(n), 2);
    const at = 2 + lenBytes;
    const mask = nextMask();
    mask.copy(frame, at);
    for (let i = 0; i < n; i++) frame[at + 4 + i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(frame);
  }

  /** Server frames: unmasked, maybe several per read or one over several reads. */
  private onData(chunk: Buffer): void {
    let buf = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
    this.buffered = null;
    while (buf.length >= 2) {
      const fin = (buf[0]! & 0x80) !== 0;
      const opcode = buf[0]! & 0x0f;
      if (buf[1]! & 0x80) return this.protocolError('masked server frame');
      let len = buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) break;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) break;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) break;
      const payload = buf.subarray(at, at + len);
      buf = buf.subarray(at + len);
      if (opcode === 0x9) this.sendFrame(0xa, Buffer.from(payload)); // ping: pong with its payload
      else if (opcode === 0x8) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        this.onClose(code, payload.subarray(2).toString());
        this.socket.end();
        return;
      } else if (opcode === 0x1 || opcode === 0x2 || opcode === 0x0) {
        this.fragments.push(payload);
        if (!fin) continue;
        const data = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments);
        this.fragments = [];
        this.emit('message', data);
      }
      // 0xa (pong) and anything else: nothing to do
    }
    if (buf.length > 0) this.buffered = Buffer.from(buf);
  }

  private protocolError(why: string): void {
    this.emit('error', new Error(why));
    this.socket.destroy();
  }

  private onClose(code: number, reason: string): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.emit('close', code, reason);
  }
}
