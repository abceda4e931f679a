"""Datasets: what each one is (``specs``), where its files come from (``sources``), the verified
cache (``cache``), datasets stored as arrays (``arrays``), file digests kept in stamps
(``stamps``), the generated shapes (``shapes``) and a user's folder of images (``folders``)."""
