"""The web app (a Gradio page, also a Hugging Face Space); ``python app.py`` at the repository root.

Modules, each one job, depending one way (config ← form ← jobs ← page):

* :mod:`~lsd_jax.web.config`: :class:`AppConfig`, what this server accepts (environment, launch flags);
* :mod:`~lsd_jax.web.form`: the widgets, generated from the parameter table, and the page's values → params;
* :mod:`~lsd_jax.web.jobs`: validating, previewing and rendering requests, and the per-request folders
  (no Gradio);
* :mod:`~lsd_jax.web.page`: the Blocks layout, the handlers behind the ``/render`` and ``/preview``
  endpoints, :func:`~lsd_jax.web.page.build_app`, :func:`~lsd_jax.web.page.launch` and ``main``.
"""
