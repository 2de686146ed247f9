"""The apps: one package per task, each declaring itself with dlkit.registry.register.

In the repository they live in apps/; installed, they are dlkit.apps.
"""
