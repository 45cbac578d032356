"""The streamer's alert box: designs, media, the server-side alert queue, overlays, the console.

It sits behind the Hub like history does: events reach overlays through the
transports; this package only decides how they look (designs), when each
overlay plays them (the queue), and shows the operator what happened (the
console). Nothing here delivers an event: see shared/DESIGN.md, "Alert queue".
``box.install`` wires it into the app.
"""
