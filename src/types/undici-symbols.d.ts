// undici's internal symbols: the socket of a Client, the HTTP/1.1 parser of a
// socket, a Client's requests and which of them is in flight. Used only to let
// that parser accept an unsolicited 100 Continue (src/upstream/informational.ts).
declare module 'undici/lib/core/symbols.js' {
  const symbols: {
    readonly kSocket: unique symbol;
    readonly kParser: unique symbol;
    readonly kRunning: unique symbol;
    readonly kQueue: unique symbol;
    readonly kRunningIdx: unique symbol;
  };
  export default symbols;
}
