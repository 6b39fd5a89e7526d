"""`chrysopedia serve`: the app in a browser, one app process per browser session.

- `server.py`: the web server (textual-serve's `Server`, with a token, a session limit,
  and sessions that always end their process).
- `session.py`: what each session runs (`python -m tui.serve.session`): the ordinary app,
  ended with the server even if the server is killed.
- `browser.py`: what the app does differently when it runs in a browser (open a video in
  a new tab, export as a download).
"""
