// Reference socket.io 4.8 server for bench/fanout.py: the same wire as the
// project's server for what the benchmark does. A page connects with ?code=C,
// gets WELCOME and listens on room C; GET /notify?code=C&event=E&... emits E
// with every query parameter as data to room C and answers the seed-0 JSON.
// Settings are socket.io's defaults (permessage-deflate off, 25 s pings).
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 3000);
const server = http.createServer((request, response) => {
  const url = new URL(request.url, "http://127.0.0.1");
  if (url.pathname === "/heartbeat") {
    response.writeHead(200, { "Content-Type": "application/json" });
    response.end(JSON.stringify({ heartbeat: "OK" }));
    return;
  }
  if (url.pathname === "/notify") {
    const data = Object.fromEntries(url.searchParams);
    const code = data.code;
    const event = String(data.event || "").toUpperCase().replace(/ /g, "_");
    const room = io.sockets.adapter.rooms.get(code);
    const count = room ? room.size : 0;
    io.to(code).emit(event, data);
    response.writeHead(200, { "Content-Type": "application/json" });
    response.end(JSON.stringify({ success: 1, count, msg: `Broadcast event to ${count} clients` }));
    return;
  }
  if (!url.pathname.startsWith("/socket.io/")) {
    response.writeHead(404);
    response.end();
  }
});
const io = new Server(server);
io.on("connection", (socket) => {
  socket.emit("WELCOME", { message: "Connected" });
  const code = socket.handshake.query.code || (socket.handshake.auth || {}).code;
  if (typeof code === "string") socket.join(code);
});
server.listen(port, "127.0.0.1", () => console.log(`listening on ${port}`));
