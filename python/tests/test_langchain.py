"""LangChain: the callback handler traces runs (with langchain-core's own fake chat models), and
the context helpers change the rendered prompt when a lesson applies, and only then."""

from __future__ import annotations

import pytest
from conftest import Server
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompt_values import ChatPromptValue
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from feedloop import AsyncFeedloop, Feedloop, new_id
from feedloop.integrations.langchain import (
    FeedloopCallbackHandler,
    feedloop_context,
    with_feedloop_context,
)

INSTRUCTION = "Tell the user to bring an ID card to the branch."
ANSWER = "Bring your ID card to any branch."


@pytest.fixture
def server(own_server: Server) -> Server:
    """A server per test (see test_openai.py: traces vote on lessons)."""
    return own_server


@pytest.fixture
def lesson_query(client: Feedloop) -> str:
    query = f"How do I reset the PIN of card {new_id('')}?"
    client.create_lesson("pin", examples=[query], instruction=INSTRUCTION, status="active")
    return query


PROMPT = ChatPromptTemplate.from_messages(
    [("system", "You are a bank assistant."), ("human", "{question}")]
)


def test_the_prompt_gets_the_lessons_block_only_when_a_lesson_applies(
    client: Feedloop, lesson_query: str
) -> None:
    with_context = with_feedloop_context(PROMPT, client)
    rendered = with_context.invoke({"question": lesson_query})
    plain = PROMPT.invoke({"question": lesson_query})
    assert isinstance(rendered, ChatPromptValue)
    assert rendered != plain
    system = rendered.messages[0]
    assert isinstance(system, SystemMessage)
    assert system.content.startswith("You are a bank assistant.\n\n")
    assert INSTRUCTION in system.content
    assert rendered.messages[1:] == plain.messages[1:]

    unrelated = {"question": "Which exotic fruits grow in a cold greenhouse?"}
    assert with_context.invoke(unrelated) == PROMPT.invoke(unrelated)


def test_a_template_variable_receives_the_block(client: Feedloop, lesson_query: str) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [("system", "Be brief.\n{feedloop_context}"), ("human", "{question}")]
    )
    rendered = with_feedloop_context(prompt, client).invoke({"question": lesson_query})
    assert INSTRUCTION in rendered.to_messages()[0].content
    # A text template, and the plain runnable that fills the variable.
    text = PromptTemplate.from_template("{feedloop_context}\nQ: {question}\nA:")
    chain = feedloop_context(client) | text
    assert INSTRUCTION in chain.invoke({"question": lesson_query}).to_string()
    assert chain.invoke({"question": "What is 2 + 2?"}).to_string() == "\nQ: What is 2 + 2?\nA:"
    with pytest.raises(ValueError, match="'question'"):
        feedloop_context(client).invoke({"query": "no question key"})


def test_the_handler_traces_a_chain_with_its_model_call(
    client: Feedloop, lesson_query: str
) -> None:
    handler = FeedloopCallbackHandler(client, session_id="lc-session", tags=["support"])
    model = GenericFakeChatModel(messages=iter([AIMessage(content=ANSWER)]))
    chain = with_feedloop_context(PROMPT, client) | model | StrOutputParser()
    answer = chain.invoke({"question": lesson_query}, config={"callbacks": [handler]})
    assert answer == ANSWER
    trace_id = handler.last_trace_id
    assert trace_id is not None
    assert client.flush(30)
    trace = client.get_trace(trace_id)["trace"]
    assert trace["input"] == lesson_query
    assert trace["output"] == ANSWER
    assert trace["session_id"] == "lc-session"
    assert set(trace["tags"]) == {"support", "langchain"}
    assert trace["status"] == "ok"
    # The model saw the lessons: the trace keeps the messages as sent.
    assert INSTRUCTION in trace["context"]["system_prompt"]
    assert trace["context"]["messages"][-1] == {"role": "user", "content": lesson_query}
    spans = {span["id"]: span for span in trace["spans"]}
    (llm,) = [span for span in spans.values() if span["kind"] == "llm"]
    assert llm["output"] == ANSWER
    assert llm["name"] == "GenericFakeChatModel"
    (root,) = [span for span in spans.values() if "parent_id" not in span]
    assert root["kind"] == "chain"
    parent = spans[llm["parent_id"]]
    assert parent["id"] == root["id"]
    assert all(span["status"] == "ok" for span in spans.values())
    assert len(spans) >= 4  # the sequence, the context step, the prompt, the model, the parser


def test_a_failing_run_is_recorded_as_an_error(client: Feedloop) -> None:
    handler = FeedloopCallbackHandler(client)

    def explode(_: object) -> str:
        raise RuntimeError("tool broke")

    chain = PROMPT | FakeListChatModel(responses=["unused"]) | RunnableLambda(explode)
    with pytest.raises(RuntimeError):
        chain.invoke({"question": "hi"}, config={"callbacks": [handler]})
    assert client.flush(30)
    trace = client.get_trace(str(handler.last_trace_id))["trace"]
    assert trace["status"] == "error" and "tool broke" in trace["error"]
    failed = [span for span in trace["spans"] if span["status"] == "error"]
    assert {span["name"] for span in failed} >= {"explode"}


def test_runs_inside_an_open_trace_add_spans_to_it(client: Feedloop) -> None:
    handler = FeedloopCallbackHandler(client)
    chain = PROMPT | FakeListChatModel(responses=["Hello!"])
    with client.trace(input="greeting", session_id=new_id("s-")) as trace:
        reply = chain.invoke({"question": "hi"}, config={"callbacks": [handler]})
        trace.output = reply.content
    assert client.flush(30)
    body = client.get_trace(trace.id)["trace"]
    assert body["input"] == "greeting" and body["output"] == "Hello!"
    assert "llm" in {span["kind"] for span in body["spans"]}


async def test_the_async_path(server: Server, lesson_query: str) -> None:
    async with AsyncFeedloop(server.base_url, server.key, flush_on_exit=False) as client:
        handler = FeedloopCallbackHandler(client)
        model = FakeListChatModel(responses=[ANSWER])
        chain = with_feedloop_context(PROMPT, client) | model | StrOutputParser()
        answer = await chain.ainvoke({"question": lesson_query}, config={"callbacks": [handler]})
        assert answer == ANSWER
        assert await client.aflush(30)
        trace = (await client.get_trace(str(handler.last_trace_id)))["trace"]
        assert INSTRUCTION in trace["context"]["system_prompt"]
        assert trace["output"] == ANSWER
        with pytest.raises(TypeError, match="ainvoke"):
            with_feedloop_context(PROMPT, client).invoke({"question": "sync?"})


class Branches(BaseRetriever):
    """A retriever over two fixed documents."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(page_content="Branches open at 9.", metadata={"source": "hours.md"}),
            Document(page_content="Bring an ID card.", metadata={"source": "pin.md"}),
        ]


@tool
def branch_count(city: str) -> int:
    """How many branches a city has."""
    return len(city)


def test_retrievers_and_tools_become_spans_and_documents_the_context(client: Feedloop) -> None:
    handler = FeedloopCallbackHandler(client)
    model = FakeListChatModel(responses=["At 9, with your ID card."])

    def join(documents: list[Document]) -> dict[str, str]:
        return {"question": "\n".join(d.page_content for d in documents)}

    chain = Branches() | RunnableLambda(join) | PROMPT | model
    chain.invoke("When do branches open?", config={"callbacks": [handler]})
    chain_trace_id = str(handler.last_trace_id)
    assert branch_count.invoke({"city": "Lyon"}, config={"callbacks": [handler]}) == 4
    assert client.flush(30)
    trace = client.get_trace(chain_trace_id)["trace"]
    assert trace["input"] == "When do branches open?"
    assert [d["content"] for d in trace["context"]["documents"]] == [
        "Branches open at 9.",
        "Bring an ID card.",
    ]
    (retrieval,) = [span for span in trace["spans"] if span["kind"] == "retrieval"]
    assert retrieval["input"] == "When do branches open?"
    assert retrieval["output"][1]["metadata"] == {"source": "pin.md"}
    tool_trace = client.get_trace(str(handler.last_trace_id))["trace"]
    (tool_span,) = tool_trace["spans"]
    assert tool_span["kind"] == "tool" and tool_span["name"] == "branch_count"
    assert tool_span["output"] == 4
