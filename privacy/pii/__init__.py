"""PII detection and masking for Chinese and English customer-service text (privacy-internal).

Built on Presidio's analyzer with blank spaCy pipelines (nothing is downloaded), a jieba
tokenizer that also tags parts of speech, and one recognizer per module under
``recognizers/``. Other rooms use it only through ``privacy.PIIDetector``.
"""
