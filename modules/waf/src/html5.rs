//! HTML5 tokenizer.
