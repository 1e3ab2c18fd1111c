"""The driver's display: `vigie display` serves a page that shows the daemon's alert bus at a glance.

`config` (the `[display]` table) and `state` (what the page shows, folded from the bus's messages) are plain Python;
`bridge` is the web server and the only module that imports aiohttp, so loading the CLI stays light.
"""
