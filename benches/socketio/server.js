// The Socket.IO peer of the chat CPU benchmark (benches/chat_cpu/run.sh, docs/benchmarks/chat.md):
// what a shop would write instead of cuecast's chat. One room; every client joins it on connect;
// each "post" event is broadcast to the room as a "message" event (to the sender too, as cuecast
// does). WebSocket transport only, no per-message compression (Socket.IO's defaults otherwise).
//
//   node benches/socketio/server.js            # PORT=0: prints "listening port=N" once bound
//   PORT=3000 node benches/socketio/server.js
//
// Install its one dependency first (pinned in package-lock.json): `npm ci` in this directory.
"use strict";
const http = require("node:http");
const { Server } = require("socket.io");

const ROOM = "demo";
const server = http.createServer();
const io = new Server(server, {
  transports: ["websocket"],
  perMessageDeflate: false,
  serveClient: false,
  maxHttpBufferSize: 16384,
});

io.on("connection", (socket) => {
  socket.join(ROOM);
  socket.on("post", (text) => {
    if (typeof text === "string" && text.length <= 500) {
      io.to(ROOM).emit("message", text);
    }
  });
});

server.listen(Number(process.env.PORT || 0), "127.0.0.1", () => {
  console.log(`listening port=${server.address().port}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
