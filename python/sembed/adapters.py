"""Embedding adapters with the method names LangChain and LlamaIndex call, without needing either
package: pass an instance where those frameworks expect an embedding model."""
import asyncio

from .model import Model


class Embeddings:
    """``Embeddings(model_or_path, batch_size=32, normalize_embeddings=None, query_prompt=None,
    document_prompt=None, **model_kwargs)``

    LangChain (langchain_core.embeddings.Embeddings): ``embed_documents(texts) -> list[list[float]]``,
    ``embed_query(text) -> list[float]`` and their async twins ``aembed_documents`` /
    ``aembed_query``. LlamaIndex (BaseEmbedding): ``get_text_embedding``,
    ``get_text_embedding_batch``, ``get_query_embedding``, ``_get_text_embedding(s)``,
    ``_get_query_embedding`` and the async ``_aget_*`` forms. Prompts (e.g. "query: " for e5
    models) are prepended when given."""

    def __init__(self, model, batch_size=32, normalize_embeddings=None, query_prompt=None,
                 document_prompt=None, **model_kwargs):
        self.model = model if isinstance(model, Model) else Model(model, **model_kwargs)
        self.batch_size = batch_size
        self.normalize_embeddings = normalize_embeddings
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt

    def _enc(self, texts, prompt):
        return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=self.normalize_embeddings,
                                 prompt=prompt).tolist()

    # LangChain
    def embed_documents(self, texts):
        """Embed a list of documents: one list of floats each."""
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a list of str; use embed_query for one text")
        return self._enc(list(texts), self.document_prompt)

    def embed_query(self, text):
        """Embed one query: a list of floats."""
        if not isinstance(text, str):
            raise TypeError(f"embed_query takes a str, not {type(text).__name__}")
        return self._enc(text, self.query_prompt)

    async def aembed_documents(self, texts):
        return await asyncio.get_running_loop().run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text):
        return await asyncio.get_running_loop().run_in_executor(None, self.embed_query, text)

    # LlamaIndex
    def get_text_embedding(self, text):
        return self._enc(text, self.document_prompt)

    def get_text_embedding_batch(self, texts, show_progress=False, **_):
        return self.model.encode(list(texts), batch_size=self.batch_size, show_progress_bar=show_progress,
                                 normalize_embeddings=self.normalize_embeddings,
                                 prompt=self.document_prompt).tolist()

    def get_query_embedding(self, query):
        return self.embed_query(query)

    _get_text_embedding = get_text_embedding
    _get_query_embedding = get_query_embedding

    def _get_text_embeddings(self, texts):
        return self.embed_documents(texts)

    async def _aget_query_embedding(self, query):
        return await self.aembed_query(query)

    async def _aget_text_embedding(self, text):
        return await asyncio.get_running_loop().run_in_executor(None, self.get_text_embedding, text)

    async def _aget_text_embeddings(self, texts):
        return await self.aembed_documents(texts)
