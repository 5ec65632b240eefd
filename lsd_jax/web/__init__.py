"""The web app (a Gradio page, also a Hugging Face Space); ``python app.py`` at the repository root.

Modules, each one job, depending one way (config ← form ← door ← jobs ← page; speed and live serve jobs, examples
serve page, door serves jobs and live_page):

* :mod:`~lsd_jax.web.config`: :class:`AppConfig`, what this server accepts (environment, launch flags);
* :mod:`~lsd_jax.web.form`: the widgets, generated from the parameter table, and the page's values → params;
* :mod:`~lsd_jax.web.door`: the one door for a visitor's style (a catalogue name or a received upload, never a
  server path; converted in the sandbox; the memory check the Live page makes before compiling);
* :mod:`~lsd_jax.web.speed`: this server's measured speeds and the render-time estimate;
* :mod:`~lsd_jax.web.playback`: play while rendering: a render's live copy handed to the page in pieces;
* :mod:`~lsd_jax.web.jobs`: validating, previewing and rendering requests, the visitors' runs (each in
  its own thread, cancellable), and the per-request folders (no Gradio);
* :mod:`~lsd_jax.web.examples`: the one-click examples (the synthesised demo song, three parameter sets);
* :mod:`~lsd_jax.web.page`: the Blocks layout, the handlers behind the ``/render`` and ``/preview``
  endpoints, :func:`~lsd_jax.web.page.build_app`, :func:`~lsd_jax.web.page.launch` and ``main``;
* :mod:`~lsd_jax.web.live_page`: live mode's page (``/live``: a microphone or a shared tab drives frames in real
  time) and ``lsd-jax live``; page adds it.
"""
